package eventlog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emmansun/gmsm/sm3"
	bolt "go.etcd.io/bbolt"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
)

// The checkpointer signs and timestamps the tree once per interval when it grew: one token
// covers every event since the last checkpoint, whatever the ingest rate. Each checkpoint's
// token is itself logged (a timestamp event, carried by the next bundle), so every later
// checkpoint covers every earlier token: that is what lets evidence outlive a TSA
// certificate (Renew).

func (l *Log) checkpointer() {
	defer l.workers.Done()
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			changed := l.size > 0 && (l.latest == nil || l.latestSizeLocked() != l.size)
			l.mu.Unlock()
			if changed {
				if _, err := l.Checkpoint(context.Background()); err != nil {
					l.Stats.CheckpointFailures.Add(1)
					l.log.Error("checkpoint failed; the next tick tries again", "err", err)
				}
			}
		}
	}
}

func (l *Log) latestSizeLocked() uint64 {
	if l.latest == nil {
		return 0
	}
	c, err := ParseCheckpoint(l.latest.Body)
	if err != nil {
		return 0
	}
	return c.Size
}

func timestampSubject(size uint64) string { return "checkpoint/" + strconv.FormatUint(size, 10) }

// timestampEvent is the event that logs a checkpoint's token.
func (l *Log) timestampEvent(size uint64, sc *SignedCheckpoint) *pendingEvent {
	sum := sm3.Sum(sc.Token)
	line, err := Event{Type: TypeTimestamp, Time: l.cfg.Now(), Subject: timestampSubject(size), Digest: hex.EncodeToString(sum[:]),
		Attrs: map[string]string{"origin": l.cfg.Origin}}.Encode()
	if err != nil {
		panic(err) // every field is set above
	}
	return &pendingEvent{line: line}
}

// LatestSize is the size of the latest checkpoint, 0 when there is none: what proofs are
// made against by default, without reading the cosignatures.
func (l *Log) LatestSize() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latestSizeLocked()
}

// Latest returns the latest checkpoint, with its cosignatures; nil when there is none.
func (l *Log) Latest() *SignedCheckpoint {
	l.mu.Lock()
	sc := l.latest
	l.mu.Unlock()
	if sc == nil {
		return nil
	}
	out := *sc
	if c, err := ParseCheckpoint(sc.Body); err == nil {
		out.Cosignatures = l.cosignatures(c.Size)
	}
	return &out
}

// Checkpoint signs and timestamps the current tree when it grew since the latest
// checkpoint, and returns the latest checkpoint.
func (l *Log) Checkpoint(ctx context.Context) (*SignedCheckpoint, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	size, root, latest, latestSize := l.size, l.compact.Root(), l.latest, l.latestSizeLocked()
	l.mu.Unlock()
	if size == 0 {
		return nil, ErrEmpty
	}
	if latest != nil && latestSize == size {
		return l.Latest(), nil
	}
	c := Checkpoint{Origin: l.cfg.Origin, Size: size, Root: root, Time: l.cfg.Now().UTC()}
	body := c.Body()
	sig, err := signing.Sign(l.cfg.Signer.Key, []byte(body))
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	digest := tokenDigest(body, sig)
	tok, err := l.cfg.Stamper.Timestamp(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("timestamp checkpoint %d: %w", size, err)
	}
	l.Stats.Tokens.Add(1)
	if _, err := signing.VerifyToken(tok, digest, l.cfg.Roots()); err != nil {
		return nil, fmt.Errorf("the TSA's token for checkpoint %d does not verify (is its root in pki/extra-roots.pem?): %w", size, err)
	}
	sc := &SignedCheckpoint{Body: body, Signature: sig, Token: tok}
	for _, cert := range l.cfg.Signer.Certificates() {
		sc.Certificates = append(sc.Certificates, cert.Raw)
	}
	if err := l.putObject(ctx, checkpointKey(size), sc); errors.Is(err, storage.ErrExists) {
		// Stored before a crash that kept it from the database: that one stands.
		var stored SignedCheckpoint
		if err := l.getJSON(ctx, checkpointKey(size), &stored); err != nil {
			return nil, err
		}
		sc = &stored
	} else if err != nil {
		return nil, fmt.Errorf("store checkpoint %d: %w", size, err)
	}
	if err := l.putDB(bCheckpts, u64(size), sc); err != nil {
		return nil, fmt.Errorf("record checkpoint %d: %w", size, err)
	}
	l.mu.Lock()
	l.latest = sc
	l.pending = l.timestampEvent(size, sc)
	l.mu.Unlock()
	l.Stats.Checkpoints.Add(1)
	return l.Latest(), nil
}

// CheckpointAt returns the checkpoint of a size, with its cosignatures.
func (l *Log) CheckpointAt(size uint64) (*SignedCheckpoint, error) {
	var sc *SignedCheckpoint
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCheckpts).Get(u64(size))
		if v == nil {
			return fmt.Errorf("checkpoint of size %d: %w", size, ErrNotFound)
		}
		sc = &SignedCheckpoint{}
		return json.Unmarshal(v, sc)
	})
	if err != nil {
		return nil, err
	}
	sc.Cosignatures = l.cosignatures(size)
	return sc, nil
}

// covering returns the first checkpoint whose tree holds event index, making one when none
// does yet.
func (l *Log) covering(ctx context.Context, index uint64) (*SignedCheckpoint, uint64, error) {
	var size uint64
	err := l.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bCheckpts).Cursor().Seek(u64(index + 1)); k != nil {
			size = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if size == 0 {
		if index >= l.Size() {
			return nil, 0, fmt.Errorf("event %d: %w", index, ErrNotFound)
		}
		sc, err := l.Checkpoint(ctx)
		if err != nil {
			return nil, 0, err
		}
		c, err := ParseCheckpoint(sc.Body)
		return sc, c.Size, err
	}
	sc, err := l.CheckpointAt(size)
	return sc, size, err
}

func (l *Log) cosignatures(size uint64) []Cosignature {
	var out []Cosignature
	_ = l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bCosigs).Cursor()
		prefix := u64(size)
		for k, v := c.Seek(prefix); len(k) > 8 && binary.BigEndian.Uint64(k[:8]) == size; k, v = c.Next() {
			var cs Cosignature
			if json.Unmarshal(v, &cs) == nil {
				out = append(out, cs)
			}
		}
		return nil
	})
	return out
}

// Renew logs the latest checkpoint's token and timestamps a new checkpoint over it, marking
// that checkpoint a renewal: evidence chains through renewals, so an old token whose TSA
// certificate has since expired is still shown to have existed while it was valid (the idea
// of RFC 4998). Run it before a TSA or signing certificate expires, or when an algorithm is
// retired.
func (l *Log) Renew(ctx context.Context) (*SignedCheckpoint, error) {
	if _, err := l.send(ctx, &appendReq{flush: true, done: make(chan appendRes, 1)}); err != nil {
		return nil, err
	}
	sc, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	c, err := ParseCheckpoint(sc.Body)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s%020d", renewalsPrefix, c.Size)
	if err := l.putObject(ctx, key, map[string]string{"checkpoint": checkpointKey(c.Size)}); err != nil && !errors.Is(err, storage.ErrExists) {
		return nil, fmt.Errorf("record renewal: %w", err)
	}
	if err := l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bRenewals).Put(u64(c.Size), nil) }); err != nil {
		return nil, fmt.Errorf("record renewal: %w", err)
	}
	l.log.Info("evidence renewed: a new timestamp covers every earlier one", "size", c.Size)
	return sc, nil
}

// renewalsAfter lists renewal sizes greater than size, ascending.
func (l *Log) renewalsAfter(size uint64) []uint64 {
	var out []uint64
	_ = l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRenewals).Cursor()
		for k, _ := c.Seek(u64(size + 1)); k != nil; k, _ = c.Next() {
			out = append(out, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return out
}

// CoveredAt is the time of the first checkpoint that holds event index; zero when none
// does yet.
func (l *Log) CoveredAt(index uint64) time.Time {
	var t time.Time
	_ = l.db.View(func(tx *bolt.Tx) error {
		if k, v := tx.Bucket(bCheckpts).Cursor().Seek(u64(index + 1)); k != nil {
			var sc SignedCheckpoint
			if json.Unmarshal(v, &sc) == nil {
				if c, err := ParseCheckpoint(sc.Body); err == nil {
					t = c.Time
				}
			}
		}
		return nil
	})
	return t
}
