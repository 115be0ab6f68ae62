package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
)

// HTTPWitness is another dangan archive (normally the county archive) that cosigns this
// archive's checkpoints at POST /api/v1/log/witness. Its root must be in this archive's
// pki/extra-roots.pem, and this archive's root in its.
type HTTPWitness struct {
	URL    string // the witness's base URL
	Token  string // a token the witness issued to this archive (department or archive role)
	Client *http.Client
}

// Cosign implements eventlog.Witness.
func (w *HTTPWitness) Cosign(ctx context.Context, req *eventlog.WitnessRequest) (*eventlog.Cosignature, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.URL, "/")+"/api/v1/log/witness", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+w.Token)
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: witness %s: %v", ErrUnavailable, w.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: witness %s: %v", ErrUnavailable, w.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Type        string  `json:"type"`
			Detail      string  `json:"detail"`
			WitnessSize *uint64 `json:"witness_size"`
		}
		json.Unmarshal(data, &p)
		switch {
		case strings.HasSuffix(p.Type, ":witness-size") && p.WitnessSize != nil:
			return nil, &eventlog.SizeError{Size: *p.WitnessSize}
		case strings.HasSuffix(p.Type, ":log-fork"):
			return nil, fmt.Errorf("%w: %s", eventlog.ErrFork, p.Detail)
		case resp.StatusCode >= 500:
			return nil, fmt.Errorf("%w: witness %s: %d %s", ErrUnavailable, w.URL, resp.StatusCode, p.Detail)
		}
		return nil, fmt.Errorf("witness %s refused the checkpoint: %d %s: %s", w.URL, resp.StatusCode, p.Type, p.Detail)
	}
	var cs eventlog.Cosignature
	if err := json.Unmarshal(data, &cs); err != nil {
		return nil, fmt.Errorf("witness %s: the cosignature does not parse: %w", w.URL, err)
	}
	return &cs, nil
}

// Witness has w cosign the latest checkpoint and keeps the cosignature.
func (a *Archive) Witness(ctx context.Context, w eventlog.Witness) (*eventlog.SignedCheckpoint, error) {
	return a.elog.WitnessWith(ctx, w)
}

// WitnessEvery offers a checkpoint to w at each interval until ctx ends, when the log grew
// since the last cosignature. A refusal for a fork is logged as an error every time: it
// means this archive's history no longer matches what the witness saw.
func (a *Archive) WitnessEvery(ctx context.Context, w eventlog.Witness, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastSize uint64
	for {
		if size := a.elog.Size(); size > 0 && size != lastSize {
			sc, err := a.Witness(ctx, w)
			switch {
			case errors.Is(err, eventlog.ErrFork):
				a.log.Error("THE WITNESS REFUSED THIS ARCHIVE'S CHECKPOINT: the event log is not consistent with what it cosigned before (run dangan log verify)", "err", err)
			case err != nil:
				a.log.Warn("witnessing failed; retrying at the next interval", "err", err)
			default:
				c, _ := eventlog.ParseCheckpoint(sc.Body)
				lastSize = c.Size
				a.log.Info("checkpoint witnessed", "size", c.Size, "cosignatures", len(sc.Cosignatures))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
