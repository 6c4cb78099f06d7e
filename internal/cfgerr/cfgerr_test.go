package cfgerr_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
)

func TestError(t *testing.T) {
	const invalid cfgerr.Of = "thing"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{invalid.Field("Size", 3, "must be at least 4"), "invalid thing config: Size 3 must be at least 4"},
		{invalid.Field("Name", "a b", "must not contain whitespace"), `invalid thing config: Name "a b" must not contain whitespace`},
		{invalid.Field("Logger", nil, "must be set"), "invalid thing config: Logger must be set"},
		{invalid.Wrap("Path", "x", fs.ErrNotExist), `invalid thing config: Path "x": file does not exist`},
		{invalid.Wrap("Prefix", nil, fs.ErrInvalid), "invalid thing config: Prefix: invalid argument"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, cfgerr.ErrInvalid) {
			t.Errorf("%q does not match ErrInvalid", tc.err)
		}
	}
	if err := invalid.Wrap("Path", nil, fs.ErrNotExist); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%q does not unwrap to its cause", err)
	}
	if errors.Is(invalid.Field("A", 1, "b"), fs.ErrNotExist) {
		t.Error("a field error without a cause matches an unrelated error")
	}
}
