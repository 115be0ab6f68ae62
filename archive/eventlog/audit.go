package eventlog

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage"
)

// AuditReport is what replaying a log from storage found.
type AuditReport struct {
	Origin       string   `json:"origin"`
	Events       uint64   `json:"events"`
	Bundles      int      `json:"bundles"`
	Checkpoints  int      `json:"checkpoints"`
	Cosignatures int      `json:"cosignatures"`
	Root         string   `json:"root"`
	Problems     []string `json:"problems"` // the first is the first inconsistency found
}

// OK reports whether the log is consistent.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// Audit replays the whole log from the store alone (no database): it reads every bundle in
// order, checks each event's canonical form, recomputes the root at every checkpoint and
// compares it with the signed one, checks every checkpoint's signature and token, that
// each timestamp event logs its checkpoint's token, and every cosignature. progress, when
// set, is called with the events replayed so far.
func Audit(ctx context.Context, st storage.ObjectStore, roots *smx509.CertPool, progress func(events uint64)) (*AuditReport, error) {
	rep := &AuditReport{}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	var bundles, checkpoints []uint64
	for _, l := range []struct {
		prefix string
		into   *[]uint64
	}{{entriesPrefix, &bundles}, {checkpointsPrefix, &checkpoints}} {
		err := st.List(ctx, l.prefix, func(o storage.ObjectInfo) error {
			if n, ok := keyNumber(o.Key, l.prefix); ok {
				*l.into = append(*l.into, n)
			} else {
				problem("an unexpected object %s in the log", o.Key)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.prefix, err)
		}
	}
	sort.Slice(bundles, func(i, j int) bool { return bundles[i] < bundles[j] })
	sort.Slice(checkpoints, func(i, j int) bool { return checkpoints[i] < checkpoints[j] })
	rep.Bundles, rep.Checkpoints = len(bundles), len(checkpoints)

	tree := merkle.SM3.NewCompact()
	tokens := map[uint64]string{}     // checkpoint size → SM3 of its token
	timestamps := map[uint64]string{} // checkpoint size → digest its timestamp event logs
	bodies := map[uint64]string{}     // checkpoint size → body
	cp := 0
	checkAt := func() {
		for cp < len(checkpoints) && checkpoints[cp] == tree.Size() {
			size := checkpoints[cp]
			cp++
			var sc SignedCheckpoint
			if err := getJSON(ctx, st, checkpointKey(size), &sc); err != nil {
				problem("checkpoint %d: unreadable: %v", size, err)
				continue
			}
			info, err := VerifyCheckpoint(&sc, roots)
			if err != nil {
				problem("checkpoint %d: %v", size, err)
				continue
			}
			if rep.Origin == "" {
				rep.Origin = info.Origin
			} else if info.Origin != rep.Origin {
				problem("checkpoint %d names log %q, the others %q", size, info.Origin, rep.Origin)
			}
			if info.Size != size {
				problem("checkpoint %s says size %d", checkpointKey(size), info.Size)
			}
			if root := tree.Root(); !bytes.Equal(root, info.Root) {
				problem("checkpoint %d: the events in storage give root %x, the signed checkpoint says %x: events before %d were changed, added or removed",
					size, root, info.Root, size)
			}
			sum := sm3.Sum(sc.Token)
			tokens[size], bodies[size] = hex.EncodeToString(sum[:]), sc.Body
		}
	}
	checkAt()
	for _, start := range bundles {
		if start != tree.Size() {
			if start > tree.Size() {
				problem("events %d..%d are missing from storage (a bundle was deleted)", tree.Size(), start-1)
			} else {
				problem("the bundle at %d overlaps events already replayed (up to %d)", start, tree.Size()-1)
			}
			break
		}
		lines, err := readBundleFrom(ctx, st, start)
		if err != nil {
			problem("events from %d: %v", start, err)
			break
		}
		for i, line := range lines {
			idx := start + uint64(i)
			ev, err := ParseEvent(line)
			if err != nil {
				problem("event %d: %v", idx, err)
			} else if ev.Type == TypeTimestamp {
				var size uint64
				if _, err := fmt.Sscanf(ev.Subject, "checkpoint/%d", &size); err == nil {
					timestamps[size] = ev.Digest
				}
			}
			tree.Append(merkle.SM3.LeafHash(line), nil)
			checkAt()
		}
		if progress != nil {
			progress(tree.Size())
		}
	}
	rep.Events = tree.Size()
	rep.Root = hex.EncodeToString(tree.Root())
	for ; cp < len(checkpoints); cp++ {
		problem("checkpoint %d is beyond the %d events in storage: events at the end were removed", checkpoints[cp], rep.Events)
	}
	for size, d := range timestamps {
		if t, ok := tokens[size]; ok && t != d {
			problem("the timestamp event of checkpoint %d logs token %s, the checkpoint holds %s", size, d, t)
		}
	}
	err := st.List(ctx, cosigsPrefix, func(o storage.ObjectInfo) error {
		size, ok := keyNumber(o.Key, cosigsPrefix)
		if !ok {
			problem("an unexpected object %s in the log", o.Key)
			return nil
		}
		rep.Cosignatures++
		var cs Cosignature
		if err := getJSON(ctx, st, o.Key, &cs); err != nil {
			problem("cosignature %s: unreadable: %v", o.Key, err)
			return nil
		}
		body, ok := bodies[size]
		if !ok {
			problem("cosignature %s: no valid checkpoint of size %d", o.Key, size)
			return nil
		}
		if _, err := VerifyCosignature(&cs, body, roots); err != nil {
			problem("cosignature %s: %v", o.Key, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cosignatures: %w", err)
	}
	return rep, nil
}

func getJSON(ctx context.Context, st storage.ObjectStore, key string, v any) error {
	rc, _, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(io.LimitReader(rc, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func readBundleFrom(ctx context.Context, st storage.ObjectStore, start uint64) ([][]byte, error) {
	rc, _, err := st.Get(ctx, entriesKey(start))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBundleBytes || len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: the bundle of events from %d is truncated or too large", ErrCorrupt, start)
	}
	return bytes.Split(data[:len(data)-1], []byte("\n")), nil
}
