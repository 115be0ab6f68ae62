// Package testenv holds what dangan's tests share about the machine they run on: the
// external tools they call, and the pinned clocks they set.
//
// Tool finds a program or fails the test with one line naming the Debian package and the
// set-up command (scripts/test.sh installs everything). Date makes a pinned test time;
// DANGAN_TEST_SHIFT_YEARS moves every such time by whole years, so
//
//	DANGAN_TEST_SHIFT_YEARS=28 go test ./...
//	DANGAN_TEST_SHIFT_YEARS=-28 go test ./...
//
// show that no test mixes a pinned clock with the real one (certificates, tokens and
// checkpoints must be made at the clock that later checks them).
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SetupCommand installs every tool the tests need on a Debian machine, then runs them.
const SetupCommand = "scripts/test.sh"

// debian names the Debian package that ships each tool the tests run.
var debian = map[string]string{
	"openssl":   "openssl",
	"pdftotext": "poppler-utils",
	"pdffonts":  "poppler-utils",
	"pdfinfo":   "poppler-utils",
	"gs":        "ghostscript",
	"soffice":   "libreoffice-writer-nogui",
	"chromium":  "chromium",
}

// Tool returns the path of the named program, failing the test when it is not installed.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatal(Missing(name))
	}
	return p
}

// Missing is the one-line message for a tool that is not installed.
func Missing(name string) string {
	pkg := debian[name]
	if pkg == "" {
		pkg = name
	}
	return fmt.Sprintf("%s is not installed (Debian package %s): run %s, which installs what the tests need and runs them", name, pkg, SetupCommand)
}

var (
	shiftOnce sync.Once
	shift     int
	shiftErr  error
)

// ShiftYears is the number of years every pinned test clock is moved by
// (DANGAN_TEST_SHIFT_YEARS, default 0).
func ShiftYears() int {
	shiftOnce.Do(func() {
		v := os.Getenv("DANGAN_TEST_SHIFT_YEARS")
		if v == "" {
			return
		}
		shift, shiftErr = strconv.Atoi(v)
		if shiftErr != nil || shift < -60 || shift > 60 {
			panic(fmt.Sprintf("DANGAN_TEST_SHIFT_YEARS=%q: want whole years between -60 and 60", v))
		}
	})
	return shift
}

// Date is time.Date moved by ShiftYears: use it for a test's pinned clock and for every
// date that test compares with that clock.
func Date(year int, month time.Month, day, hour, min, sec, nsec int, loc *time.Location) time.Time {
	return time.Date(year+ShiftYears(), month, day, hour, min, sec, nsec, loc)
}
