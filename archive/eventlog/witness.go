package eventlog

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage"
)

// Witnessing: the county archive cosigns the checkpoints of departments' logs after
// checking each is consistent with the last one it cosigned for that log. A department can
// then not fork or rewrite its history without the witness refusing its next checkpoint.

// ErrFork is returned when a checkpoint is not consistent with one the witness cosigned.
var ErrFork = errors.New("the log forked: its new checkpoint is not consistent with the one witnessed before")

// SizeError says the witness last cosigned another size: ask again with a consistency proof
// from Size.
type SizeError struct{ Size uint64 }

func (e *SizeError) Error() string {
	return fmt.Sprintf("the witness last cosigned size %d: send a consistency proof from it", e.Size)
}

// WitnessRequest asks a witness to cosign a checkpoint.
type WitnessRequest struct {
	Checkpoint  SignedCheckpoint `json:"checkpoint"`
	From        uint64           `json:"from"`        // the size the witness last cosigned, as the log believes
	Consistency [][]byte         `json:"consistency"` // from From to the checkpoint's size
}

// witnessRecord is what a witness keeps per log it witnesses.
type witnessRecord struct {
	Checkpoint  SignedCheckpoint `json:"checkpoint"`
	Cosignature Cosignature      `json:"cosignature"`
}

// Cosign is the witness's side: verify the checkpoint (signature, token, trusted signer),
// check it is consistent with the last one cosigned for its origin, then cosign it with
// this log's key and remember it.
func (l *Log) Cosign(ctx context.Context, req *WitnessRequest) (*Cosignature, error) {
	info, err := VerifyCheckpoint(&req.Checkpoint, l.cfg.Roots())
	if err != nil {
		return nil, err
	}
	if info.Origin == l.cfg.Origin {
		return nil, fmt.Errorf("%w: a log does not witness itself", ErrCheckpointSigner)
	}
	l.witnessMu.Lock()
	defer l.witnessMu.Unlock()
	var prior *witnessRecord
	err = l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bWitnessed).Get([]byte(info.Origin)); v != nil {
			prior = &witnessRecord{}
			return json.Unmarshal(v, prior)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if prior != nil {
		old, err := ParseCheckpoint(prior.Checkpoint.Body)
		if err != nil {
			return nil, err
		}
		if req.From != old.Size || info.Size < old.Size {
			return nil, &SizeError{Size: old.Size}
		}
		if err := merkle.SM3.VerifyConsistency(old.Size, info.Size, old.Root, info.Root, req.Consistency); err != nil {
			l.Stats.Forks.Add(1)
			l.log.Error("LOG FORK: a witnessed log's checkpoint is not consistent with the one cosigned before; refusing it",
				"origin", info.Origin, "cosigned_size", old.Size, "new_size", info.Size, "err", err)
			key := fmt.Sprintf("%s%s/forks/%s.json", witnessPrefix, witnessID(info.Origin), l.cfg.Now().UTC().Format("20060102T150405.000000000Z"))
			if perr := l.putObject(ctx, key, map[string]any{"cosigned": prior.Checkpoint, "offered": req, "error": err.Error()}); perr != nil {
				l.log.Error("record the fork", "err", perr)
			}
			return nil, fmt.Errorf("%w: %s (cosigned size %d, offered size %d): %v", ErrFork, info.Origin, old.Size, info.Size, err)
		}
	}
	at := l.cfg.Now().UTC()
	sig, err := signing.Sign(l.cfg.Signer.Key, []byte(CosignedText(l.cfg.Origin, at, req.Checkpoint.Body)))
	if err != nil {
		return nil, err
	}
	cs := Cosignature{Witness: l.cfg.Origin, Time: at, Signature: sig}
	for _, c := range l.cfg.Signer.Certificates() {
		cs.Certificates = append(cs.Certificates, c.Raw)
	}
	rec := witnessRecord{Checkpoint: req.Checkpoint, Cosignature: cs}
	rec.Checkpoint.Cosignatures = nil
	key := fmt.Sprintf("%s%s/%020d.json", witnessPrefix, witnessID(info.Origin), info.Size)
	if err := l.putObject(ctx, key, rec); err != nil && !errors.Is(err, storage.ErrExists) {
		return nil, fmt.Errorf("store the cosigned checkpoint: %w", err)
	}
	if err := l.putDB(bWitnessed, []byte(info.Origin), rec); err != nil {
		return nil, err
	}
	l.Stats.Cosigned.Add(1)
	l.log.Info("checkpoint cosigned", "origin", info.Origin, "size", info.Size)
	return &cs, nil
}

// Witnessed reports the last checkpoint this archive cosigned for origin.
func (l *Log) Witnessed(origin string) (*SignedCheckpoint, error) {
	var rec *witnessRecord
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bWitnessed).Get([]byte(origin)); v != nil {
			rec = &witnessRecord{}
			return json.Unmarshal(v, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("log %q: %w", origin, ErrNotFound)
	}
	sc := rec.Checkpoint
	sc.Cosignatures = []Cosignature{rec.Cosignature}
	return &sc, nil
}

// Witness is something that cosigns this log's checkpoints: another archive over HTTP.
type Witness interface {
	Cosign(ctx context.Context, req *WitnessRequest) (*Cosignature, error)
}

// WitnessWith has w cosign the latest checkpoint (making one when the log grew), proving
// consistency from the size w last cosigned, and stores the cosignature.
func (l *Log) WitnessWith(ctx context.Context, w Witness) (*SignedCheckpoint, error) {
	sc, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	c, err := ParseCheckpoint(sc.Body)
	if err != nil {
		return nil, err
	}
	_, from := l.latestCosigned()
	if from > c.Size {
		from = 0
	}
	var cs *Cosignature
	for attempt := 0; ; attempt++ {
		cons, err := l.ConsistencyProof(from, c.Size)
		if err != nil {
			return nil, err
		}
		req := &WitnessRequest{Checkpoint: *sc, From: from, Consistency: cons}
		req.Checkpoint.Cosignatures = nil
		cs, err = w.Cosign(ctx, req)
		var se *SizeError
		if errors.As(err, &se) && attempt == 0 && se.Size <= c.Size {
			from = se.Size
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
		break
	}
	if err := l.AddCosignature(ctx, c.Size, cs); err != nil {
		return nil, err
	}
	return l.CheckpointAt(c.Size)
}

// AddCosignature verifies a witness's cosignature of checkpoint size and keeps it.
func (l *Log) AddCosignature(ctx context.Context, size uint64, cs *Cosignature) error {
	sc, err := l.CheckpointAt(size)
	if err != nil {
		return err
	}
	if _, err := VerifyCosignature(cs, sc.Body, l.cfg.Roots()); err != nil {
		return err
	}
	key := fmt.Sprintf("%s%020d-%s.json", cosigsPrefix, size, witnessID(cs.Witness))
	if err := l.putObject(ctx, key, cs); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("store cosignature: %w", err)
	}
	return l.putDB(bCosigs, append(u64(size), witnessID(cs.Witness)...), cs)
}

// latestCosigned returns the latest checkpoint with a cosignature, and its size.
func (l *Log) latestCosigned() (*SignedCheckpoint, uint64) {
	var size uint64
	found := false
	_ = l.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bCosigs).Cursor().Last(); k != nil {
			size, found = binary.BigEndian.Uint64(k[:8]), true
		}
		return nil
	})
	if !found {
		return nil, 0
	}
	sc, err := l.CheckpointAt(size)
	if err != nil {
		return nil, 0
	}
	return sc, size
}

// CosignedAt reports when the log was last cosigned, zero when never.
func (l *Log) CosignedAt() time.Time {
	sc, _ := l.latestCosigned()
	var t time.Time
	if sc != nil {
		for _, cs := range sc.Cosignatures {
			if cs.Time.After(t) {
				t = cs.Time
			}
		}
	}
	return t
}
