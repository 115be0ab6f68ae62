package console

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/dangan-archive/dangan/archive/eventlog"
)

// logData is 日志与见证: the latest checkpoint as signed, its witnesses' cosignatures, and an
// inclusion proof of one event in it.
type logData struct {
	Body        string
	Checkpoint  *eventlog.Checkpoint
	Root        string
	Cosigned    []eventlog.Cosignature
	Index       string
	Proof       []string
	ProofOf     uint64
	ProofFailed bool
}

func (c *console) logPage(w http.ResponseWriter, r *http.Request) {
	d := logData{Index: strings.TrimSpace(r.URL.Query().Get("index"))}
	status := http.StatusOK
	sc := c.a.Log().Latest()
	if sc != nil {
		if cp, err := eventlog.ParseCheckpoint(sc.Body); err == nil {
			d.Checkpoint, d.Root, d.Body, d.Cosigned = &cp, hex.EncodeToString(cp.Root), sc.Body, sc.Cosignatures
		}
	}
	if d.Index != "" && d.Checkpoint != nil {
		i, err := strconv.ParseUint(d.Index, 10, 64)
		var proof [][]byte
		if err == nil && i < d.Checkpoint.Size {
			proof, err = c.a.Log().InclusionProof(i, d.Checkpoint.Size)
		} else if err == nil {
			err = strconv.ErrRange
		}
		if err != nil {
			d.ProofFailed, status = true, http.StatusUnprocessableEntity
		} else {
			d.ProofOf = d.Checkpoint.Size
			for _, h := range proof {
				d.Proof = append(d.Proof, hex.EncodeToString(h))
			}
		}
	}
	c.render(w, r, status, "log", page{Title: "log", Data: d})
}
