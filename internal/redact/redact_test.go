package redact

import "testing"

// TestURL: passwords and tokens are hidden, in URLs that parse and in
// those that do not; a URL without credentials comes back as given.
func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"127.0.0.1:4222", "127.0.0.1:4222"},
		{"http://127.0.0.1:8080/livez", "http://127.0.0.1:8080/livez"},
		{"nats://u:pw@h:4222", "nats://u:xxxxx@h:4222"},
		{"u:pw@h:4222", "nats://u:xxxxx@h:4222"},
		{"nats://tok@h:4222", "nats://redacted@h:4222"},
		{"tls://tok@h:4222", "tls://redacted@h:4222"},
		{"https://u:pw@am.example/x", "https://u:xxxxx@am.example/x"},
		{"nats:/u:pw@h:4222", "nats:/xxxxx@h:4222"},
		{"nats://u:pw@h:port", "nats://xxxxx@h:port"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
