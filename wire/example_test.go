package wire_test

import (
	"fmt"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

func ExampleSubjects() {
	s := wire.MustSubjects("hb")
	fmt.Println(s.Beat("web-1"), s.Probe("web-1"), s.Beats())
	fmt.Println(s.Event("dead", "web-1"))
	id, err := s.ParseBeat("hb.web-1")
	fmt.Println(id, err)
	_, err = s.ParseBeat("hb.web-1.probe")
	fmt.Println(err)
	// Output:
	// hb.web-1 hb.web-1.probe hb.*
	// hb.events.dead.web-1
	// web-1 <nil>
	// not a beat subject
}

func ExampleIDFromHostname() {
	fmt.Println(wire.IDFromHostname("web-1.example.com"))
	fmt.Println(wire.ValidateID("web-1.example.com"))
	// Output:
	// web-1_example_com
	// invalid id "web-1.example.com": contains '.' (an id is a single subject token)
}

func ExampleAppendBeat() {
	b := wire.Beat{V: 1, ID: "web-1", Host: "web-1.example.com", PID: 42, Boot: "n8Kd2wX-4aQ",
		Seq: 1, TS: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), IntervalMS: 1000,
		Status: wire.StatusAlive, Version: "v1.0.0", Labels: map[string]string{"role": "web"}}
	fmt.Println(string(wire.AppendBeat(nil, &b)))
	// Output:
	// {"v":1,"id":"web-1","host":"web-1.example.com","pid":42,"boot":"n8Kd2wX-4aQ","seq":1,"ts":"2026-11-25T12:00:00.000Z","interval_ms":1000,"status":"alive","version":"v1.0.0","labels":{"role":"web"}}
}

func ExampleDecoder() {
	var d wire.Decoder
	var raw wire.RawBeat
	err := d.Decode([]byte(`{"v":1,"id":"a","boot":"b","seq":0,"interval_ms":1000,"status":"alive"}`), &raw)
	fmt.Println(err)
	// Output:
	// bad beat: range: "seq": seq starts at 1 (at byte 34)
}

// DecodeNext is for a receiver that keeps each sender's last beat: a
// Sender built from a beat decoded with Plain set lets the next beat skip
// parsing what it repeats. The result is Decode's either way.
func ExampleDecoder_DecodeNext() {
	b := wire.Beat{V: 1, ID: "web-1", Host: "web-1.example.com", PID: 42, Boot: "n8Kd2wX-4aQ",
		Seq: 1, TS: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), IntervalMS: 1000,
		Status: wire.StatusAlive, Version: "v1.0.0", Labels: map[string]string{"role": "web"}}
	var d wire.Decoder
	var raw wire.RawBeat
	if err := d.Decode(wire.AppendBeat(nil, &b), &raw); err != nil || !raw.Plain {
		fmt.Println(err, raw.Plain) // no shortcut for this sender: keep calling Decode
		return
	}
	// raw aliases the payload: the Sender copies what it keeps.
	s := wire.Sender{ID: string(raw.ID), Host: string(raw.Host), Boot: string(raw.Boot),
		Version: string(raw.Version), Labels: string(raw.Labels), PID: raw.PID, IntervalMS: raw.IntervalMS}

	b.Seq, b.TS, b.Status = 2, b.TS.Add(time.Second), wire.StatusLeaving
	if err := d.DecodeNext(wire.AppendBeat(nil, &b), &raw, &s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(raw.ID), raw.Seq, raw.TS.Format(time.TimeOnly), raw.Leaving, string(raw.Labels))
	// Output:
	// web-1 2 12:00:01 true {"role":"web"}
}

func ExampleNodeConn() {
	name, err := wire.NodeConn{Prefix: "hb", ID: "web-1", Reconnect: 350 * time.Millisecond}.Name()
	fmt.Println(name, err)
	c, err := wire.ParseNodeConn(name)
	fmt.Println(c.Prefix, c.ID, c.Reconnect, err)
	_, err = wire.ParseNodeConn("hbmesh monitor mon-1")
	fmt.Println(err)
	// Output:
	// hbmesh node web-1 prefix=hb reconnect=350ms <nil>
	// hb web-1 350ms <nil>
	// not a node connection name
}
