package printable_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hbmesh/hbmesh/internal/printable"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"web-1.example.com", "web-1.example.com"},
		{"v1.2.3 (go1.26)", "v1.2.3 (go1.26)"},
		{"héllo-日本", "héllo-日本"},
		{"a\x1b[2Jb", `"a\x1b[2Jb"`},                         // clear screen
		{"\x1b]0;pwned\x07", `"\x1b]0;pwned\a"`},             // OSC window title
		{"web-1\r\nweb-9  alive", `"web-1\r\nweb-9  alive"`}, // a forged row
		{"tab\there", `"tab\there"`},                         // would break columns
		{"del\x7f", `"del\x7f"`},                             // DEL
		{"c1\u009b31m", `"c1\u009b31m"`},                     // 8-bit CSI
		{"evil\u202egnp.exe", `"evil\u202egnp.exe"`},         // right-to-left override
		{"nb\u00a0sp", `"nb\u00a0sp"`},                       // looks like a space
		{"bad\xffutf8", `"bad\xffutf8"`},                     // invalid UTF-8
		{`quote " and \ alone`, `quote " and \ alone`},       // printable: left as is
		{"quote \" with \x00", `"quote \" with \x00"`},       // quoted: escaped too
	} {
		if got := printable.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven cha…"},
		{"日本語テキスト", 3, "日本語…"},
		{"\x1b[2J" + strings.Repeat("x", 100), 4, `"\x1b[2J"…`},
		{"abc", 0, "a…"},
	} {
		if got := printable.Cut(tc.in, tc.n); got != tc.want {
			t.Errorf("Cut(%q, %d) = %s, want %s", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, `"short"`},
		{"eleven char", 10, `"eleven cha"…`},
		{"日本語テキスト", 3, `"日本語"…`},
		{"\x1b[2J" + strings.Repeat("x", 100), 4, `"\x1b[2J"…`},
		{"", 3, `""`},
	} {
		if got := printable.Quote(tc.in, tc.n); got != tc.want {
			t.Errorf("Quote(%q, %d) = %s, want %s", tc.in, tc.n, got, tc.want)
		}
	}
}

// FuzzString checks that nothing String returns can drive a terminal:
// every rune is printable, whatever went in.
func FuzzString(f *testing.F) {
	for _, s := range []string{"web-1", "a\x1b[2Jb", "\r\n", "\u202e", "\xff", "\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{printable.String(s), printable.Cut(s, 5), printable.Quote(s, 5)} {
			if !utf8.ValidString(out) {
				t.Fatalf("String(%q) = %q: invalid UTF-8", s, out)
			}
			for _, r := range out {
				if !unicode.IsPrint(r) {
					t.Fatalf("String(%q) = %q: holds %U", s, out, r)
				}
			}
		}
		if printable.Is(s) != (printable.String(s) == s) {
			t.Fatalf("Is(%q) disagrees with String", s)
		}
	})
}

func TestJSON(t *testing.T) {
	for _, in := range []string{"plain", "a\x1b[2J\r\n", "del\x7f", "c1\u0085\u009b31m\u00a0é", "日本"} {
		raw, err := json.Marshal(map[string]string{"k": in})
		if err != nil {
			t.Fatal(err)
		}
		out := printable.JSON(raw)
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || back["k"] != in {
			t.Errorf("JSON(%s) = %s, decodes to %q, %v", raw, out, back["k"], err)
		}
		for _, r := range string(out) {
			if unicode.IsControl(r) {
				t.Errorf("JSON(%s) = %s: holds control %U", raw, out, r)
			}
		}
	}
	if got := printable.JSON([]byte("{\"k\":\"\u009b\"}")); string(got) != `{"k":"\u009b"}` {
		t.Errorf("JSON of a CSI = %s", got)
	}
}
