package archive

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// The last steps of an ingest are done in groups: every package whose EEP is durable when
// the committer looks is timestamped with one RFC 3161 token over a manifest of their
// signatures, the manifest and token are stored as one evidence object, and the index
// entries are written in one transaction. Under load this spares a TSA signature, an object
// and an index transaction per package; a lone ingest is a group of one and does not wait.

// BatchFormat names the layout of a timestamp batch: its manifest's first line and the
// evidence object's format.
const BatchFormat = "dangan-timestamp-batch/1"

// maxBatch bounds a group.
const maxBatch = 256

type commitReq struct {
	rec  *index.Package
	sig  []byte // the department's signature value (签名结果)
	done chan commitRes
}

type commitRes struct {
	existing *index.Package // with index.ErrCaseExists
	err      error
}

// timestampBatch is the evidence object of a group.
type timestampBatch struct {
	Format   string `json:"format"`
	Manifest string `json:"manifest"` // BatchFormat, then one line per package: "<id> <SM3(签名结果) hex>"
	Token    string `json:"token"`    // base64 RFC 3161 token over SM3(Manifest)
}

// manifestLine is the line a package has in a batch manifest.
func manifestLine(id string, sig []byte) string {
	sum := sm3.Sum(sig)
	return id + " " + hex.EncodeToString(sum[:])
}

func (a *Archive) startCommitter() {
	a.commits = make(chan *commitReq)
	a.committerDone = make(chan struct{})
	go func() {
		defer close(a.committerDone)
		for first := range a.commits {
			batch := []*commitReq{first}
		gather:
			for len(batch) < maxBatch {
				select {
				case r, ok := <-a.commits:
					if !ok {
						break gather
					}
					batch = append(batch, r)
				default:
					break gather
				}
			}
			a.commitBatch(batch)
		}
	}()
}

// commit hands a package to the committer and waits for the outcome. Once handed over the
// ingest waits even if its context ends, so that it knows what to clean up.
func (a *Archive) commit(ctx context.Context, rec *index.Package, sig []byte) commitRes {
	req := &commitReq{rec: rec, sig: sig, done: make(chan commitRes, 1)}
	select {
	case a.commits <- req:
	case <-ctx.Done():
		return commitRes{err: ctx.Err()}
	}
	return <-req.done
}

func (a *Archive) commitBatch(batch []*commitReq) {
	fail := func(err error) {
		for _, r := range batch {
			r.done <- commitRes{err: err}
		}
	}
	ctx := context.Background()
	var manifest strings.Builder
	manifest.WriteString(BatchFormat + "\n")
	for _, r := range batch {
		manifest.WriteString(manifestLine(r.rec.ID, r.sig) + "\n")
	}
	sum := sm3.Sum([]byte(manifest.String()))
	token, err := a.stamper.Timestamp(ctx, sum[:])
	if err != nil {
		fail(fmt.Errorf("%w: timestamp: %v", ErrUnavailable, err))
		return
	}
	info, err := signing.VerifyToken(token, sum[:], a.Trust())
	if err != nil {
		a.log.Error("the TSA's token does not verify: is its root in pki/extra-roots.pem?", "err", err)
		fail(fmt.Errorf("%w: the TSA's token does not verify: %v", ErrUnavailable, err))
		return
	}
	body, err := json.Marshal(timestampBatch{Format: BatchFormat, Manifest: manifest.String(), Token: base64.StdEncoding.EncodeToString(token)})
	if err != nil {
		fail(fmt.Errorf("encode timestamp batch: %w", err))
		return
	}
	key := fmt.Sprintf("evidence/batches/%s.json", batch[0].rec.ID)
	if _, err := a.store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), storage.PutOptions{RetainUntil: latestRetention(batch)}); err != nil {
		fail(fmt.Errorf("store timestamp batch: %w", err))
		return
	}
	recs := make([]*index.Package, len(batch))
	for i, r := range batch {
		r.rec.TimestampKey, r.rec.TimestampAt = key, info.GenTime
		recs[i] = r.rec
	}
	results, err := a.index.CommitPackages(recs)
	if err != nil {
		a.discard(ctx, key)
		fail(err)
		return
	}
	for i, r := range batch {
		r.done <- commitRes{existing: results[i].Existing, err: results[i].Err}
	}
	a.log.Debug("commit batch", "packages", len(batch), "evidence", key)
}

// latestRetention is the retention of a group's evidence: as long as its longest-kept package.
func latestRetention(batch []*commitReq) time.Time {
	var t time.Time
	for _, r := range batch {
		if r.rec.RetainUntil.After(t) {
			t = r.rec.RetainUntil
		}
	}
	return t
}

// stopCommitter finishes the groups in flight; call it when no ingest runs any more.
func (a *Archive) stopCommitter() {
	if a.commits != nil {
		close(a.commits)
		<-a.committerDone
		a.commits = nil
	}
}

// batchEvidence reads a package's timestamp batch.
func (a *Archive) batchEvidence(ctx context.Context, key string) (*timestampBatch, error) {
	rc, _, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("timestamp batch %s: %w", key, err)
	}
	defer rc.Close()
	var b timestampBatch
	dec := json.NewDecoder(rc)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("timestamp batch %s: %w", key, err)
	}
	if b.Format != BatchFormat {
		return nil, fmt.Errorf("timestamp batch %s: format %q", key, b.Format)
	}
	return &b, nil
}

// checkBatchTimestamp verifies that a batch manifest lists the package's signature and that
// the token covers the manifest; it returns the token's information.
func checkBatchTimestamp(id string, sig []byte, ts Timestamp, roots *smx509.CertPool) (*signing.TokenInfo, error) {
	if !strings.HasPrefix(ts.Manifest, BatchFormat+"\n") {
		return nil, errors.New("the evidence has no timestamp manifest")
	}
	line := manifestLine(id, sig)
	found := false
	for _, l := range strings.Split(ts.Manifest, "\n")[1:] {
		found = found || l == line
	}
	if !found {
		return nil, errors.New("the timestamp manifest does not list this package's signature")
	}
	tok, err := base64.StdEncoding.DecodeString(ts.Token)
	if err != nil {
		return nil, fmt.Errorf("timestamp token is not base64: %v", err)
	}
	sum := sm3.Sum([]byte(ts.Manifest))
	return signing.VerifyToken(tok, sum[:], roots)
}
