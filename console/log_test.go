package console

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/signing/merkle"
)

// 日志与见证: the latest checkpoint as signed and an inclusion proof that verifies against
// its root with the RFC 6962 verifier; an index outside the checkpoint is refused.
func TestLogPage(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 8)
	for i := range 5 {
		ingest(t, a, dept, "LOG-"+string(rune('A'+i)), "食品经营许可", "甲")
	}
	a.Log().Checkpoint(t.Context())
	wang := loginAs(t, srv.URL, "wang", "long enough password")
	sc := a.Log().Latest()
	resp, body := send(t, "GET", srv.URL+"/console/log?index=2", nil, wang, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, sc.Body[:20]) {
		t.Fatalf("the log page: %d %s", resp.StatusCode, body)
	}
	cp, err := eventlog.ParseCheckpoint(sc.Body)
	if err != nil {
		t.Fatal(err)
	}
	var proof [][]byte
	for _, part := range strings.Split(body[strings.Index(body, `class="proof"`):], "<code>")[1:] {
		h, err := hex.DecodeString(part[:strings.Index(part, "</code>")])
		if err != nil {
			t.Fatal(err)
		}
		proof = append(proof, h)
	}
	entries, _ := a.Log().Entries(t.Context(), 2, 1)
	if err := merkle.SM3.VerifyInclusion(2, cp.Size, merkle.SM3.LeafHash([]byte(entries[0].Event)), proof, cp.Root); err != nil {
		t.Fatalf("the page's proof does not verify: %v", err)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/log?index=999999", nil, wang, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("an index outside the checkpoint: %d", resp.StatusCode)
	}
}
