package archive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
)

// Cosign implements eventlog.Witness: the county archive cosigns this archive's checkpoint.
func (p *Peer) Cosign(ctx context.Context, req *eventlog.WitnessRequest) (*eventlog.Cosignature, error) {
	var cs eventlog.Cosignature
	err := p.call(ctx, http.MethodPost, "/api/v1/log/witness", "application/json", jsonBody(req), &cs)
	var pe *PeerError
	if errors.As(err, &pe) {
		switch {
		case pe.Type == "witness-size" && pe.WitnessSize != nil:
			return nil, &eventlog.SizeError{Size: *pe.WitnessSize}
		case pe.Type == "log-fork":
			return nil, fmt.Errorf("%w: %s", eventlog.ErrFork, pe.Detail)
		}
	}
	if err != nil {
		return nil, err
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
