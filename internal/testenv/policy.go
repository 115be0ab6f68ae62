package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// PolicyWith writes the shipped format policy (formats/policy.json) with its JSON rule's
// action and tool replaced, and returns its path: the policy an archive had before a change,
// for the migration tests. Keeping JSON as it came is `"action": "keep"`.
func PolicyWith(t testing.TB, jsonRule string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	pol, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "formats", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(pol, []byte(`"action": "xml", "tool": "json-to-xml"`), []byte(jsonRule), 1)
	if bytes.Equal(changed, pol) {
		t.Fatal("testenv: the shipped policy's JSON rule is not where PolicyWith expects it")
	}
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// KeepJSON is the JSON rule of a policy that keeps JSON form data as it came.
const KeepJSON = `"action": "keep"`
