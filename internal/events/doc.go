// Package events carries a monitor's verdicts out of the process without
// ever slowing detection down.
//
// # Sinks
//
// Four sinks are provided, each with the same shape:
//
//   - [NATSPublisher] publishes every event on
//     <prefix>.events.<state>.<id>, optionally into a JetStream stream that
//     keeps a durable, de-duplicated log of transitions.
//   - [Exec] runs a shell command per event (the --on-event hook).
//   - [Webhook] POSTs the JSON Alertmanager sends to its webhook receivers
//     (payload version 4), for receivers written against that format.
//   - [Alertmanager] POSTs alerts to Alertmanager's API v2, as Prometheus
//     does, re-sending them while their peer stays dead.
//
// The webhook and the Alertmanager sink share one delivery mechanism
// ([HTTPConfig]): a bounded queue per URL and retries with exponential
// backoff. Every alert, from either, has the same labels whichever
// monitor sends it (alertname=HbmeshPeerDead, peer, host, prefix, plus
// static labels for the Alertmanager sink), so a receiver de-duplicates
// N monitors' alerts about one death.
//
// Each sink has a Config with a Default constructor and a Validate
// method, a New function that does no I/O, a Run method that owns every
// goroutine the sink starts and returns only after they have exited, and a
// Handle method meant to be called from [monitor.Config.OnEvent].
//
// # Never blocking detection
//
// Handle never blocks: it copies the event into a bounded queue and
// returns. When the queue is full the event is dropped, counted in
// Stats().Dropped and logged at most once per second per sink. A slow
// receiver therefore costs events, never verdicts. Handle may be called
// before Run starts (events queue up) and after it returns (they are
// dropped once the queue is full). Handle must be called from one
// goroutine at a time, as OnEvent guarantees, if the order of delivery
// matters; it is safe for concurrent use either way.
//
// # Wiring
//
// A monitor fans its single OnEvent out to every sink:
//
//	pub, _ := events.NewNATSPublisher(nc, pcfg)
//	hook, _ := events.NewExec(ecfg)
//	mcfg.OnEvent = func(ev monitor.Event) { pub.Handle(ev); hook.Handle(ev) }
//
// and runs each sink's Run next to the monitor's until shutdown.
package events
