package firefox

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/testenv"
)

func TestCloseLeavesNothing(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run("kill="+strconv.FormatBool(kill), func(t *testing.T) {
			testenv.Require(t, Available())
			b, err := Start(t.Context(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			// Have content processes running when the browser closes.
			openPage(t, b, serve(t).URL)
			dir, pid := b.Dir(), b.PID()
			if pid == 0 || len(groupMembers(pid)) < 2 {
				t.Fatalf("pid %d, process group %v: want a running browser with helpers", pid, groupMembers(pid))
			}
			if kill {
				// Only the main process dies: its content processes
				// are left behind.
				p, err := os.FindProcess(pid)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			t.Logf("closed in %s", time.Since(start).Round(time.Millisecond))
			if err := b.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if left := groupMembers(pid); len(left) > 0 {
				t.Errorf("processes left in the group: %v", left)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("profile %s still there (stat: %v)", dir, err)
			}
			if _, err := b.NewTab(ctxFor(t)); !errors.Is(err, ErrClosed) {
				t.Errorf("NewTab after Close: %v, want ErrClosed", err)
			}
		})
	}
}
