package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage/index"
)

// The last steps of an ingest are done in groups: every package whose EEP is durable when
// the committer looks gets its ingest event appended to the event log in one bundle, and
// its index entry written in one transaction. The log's checkpointer then timestamps every
// event of the last interval with one token, so the TSA is asked about once a second
// whatever the ingest rate; a lone ingest is a group of one and does not wait.

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

// ingestEvent is the log event of an archived package: its digest, and the digest of the
// department's signature so the event binds the signed content too.
func ingestEvent(rec *index.Package, sig []byte) eventlog.Event {
	sum := sm3.Sum(sig)
	return eventlog.Event{Type: eventlog.TypeIngest, Time: rec.IngestedAt, Actor: RoleDepartment + ":" + rec.Department,
		Subject: rec.ID, Digest: rec.PackageSM3, Attrs: map[string]string{
			"archival_code": rec.ArchivalCode, "department": rec.Department, "key": rec.Key,
			"size": strconv.FormatInt(rec.Size, 10), "signature_sm3": hex.EncodeToString(sum[:])}}
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
	// A case already archived is answered before anything is logged; the committer is the
	// only writer of packages, so what it reads here stays true until it commits.
	var todo []*commitReq
	firstOf := map[string]*commitReq{}
	var dups []*commitReq
	for _, r := range batch {
		existing, err := a.index.PackageByCase(r.rec.Department, r.rec.CaseNo)
		switch {
		case err == nil:
			r.done <- commitRes{existing: existing, err: index.ErrCaseExists}
			continue
		case !errors.Is(err, index.ErrNotFound):
			r.done <- commitRes{err: err}
			continue
		}
		ck := r.rec.Department + "\x00" + r.rec.CaseNo
		if firstOf[ck] != nil {
			dups = append(dups, r)
			continue
		}
		firstOf[ck] = r
		todo = append(todo, r)
	}
	defer func() {
		for _, r := range dups {
			a.commitBatch([]*commitReq{r}) // after its twin committed: answered as a re-send
		}
	}()
	batch = todo
	if len(batch) == 0 {
		return
	}
	events := make([]eventlog.Event, len(batch))
	for i, r := range batch {
		events[i] = ingestEvent(r.rec, r.sig)
	}
	first, err := a.elog.Append(context.Background(), events...)
	if err != nil {
		fail(fmt.Errorf("%w: event log: %v", ErrUnavailable, err))
		return
	}
	recs := make([]*index.Package, len(batch))
	for i, r := range batch {
		r.rec.LogIndex = first + uint64(i)
		recs[i] = r.rec
	}
	results, err := a.index.CommitPackages(recs)
	if err != nil {
		// The events stand (the log never forgets); the packages are adopted from them at
		// the next start, or re-sent by their departments.
		fail(err)
		return
	}
	for i, r := range batch {
		r.done <- commitRes{existing: results[i].Existing, err: results[i].Err}
	}
	a.log.Debug("commit batch", "packages", len(batch), "first_event", first)
}

// stopCommitter finishes the groups in flight; call it when no ingest runs any more.
func (a *Archive) stopCommitter() {
	if a.commits != nil {
		close(a.commits)
		<-a.committerDone
		a.commits = nil
	}
}
