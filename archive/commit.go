package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"

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

// The committer is two stages, so that the index transaction of what is logged overlaps
// the next group's log append (each waits on its own fsync): logStage gathers a group,
// answers what is already archived and appends the group's events; indexStage writes every
// logged group waiting to the index in one transaction and answers them. A case is pending
// from its log append until its index write, and a twin of a pending case (the same case
// sent again meanwhile) waits for it and is answered as a re-send.
func (a *Archive) startCommitter() {
	a.commits = make(chan *commitReq)
	a.committerDone = make(chan struct{})
	logged := make(chan *commitGroup, maxBatch)
	p := &pendingCases{byCase: map[string]*commitGroup{}}
	go func() {
		defer close(logged)
		for first := range a.commits {
			batch := gather(a.commits, first, func(*commitReq) int { return 1 })
			if g := a.logStage(batch, p); g != nil {
				logged <- g
			}
		}
	}()
	go func() {
		defer close(a.committerDone)
		for g := range logged {
			a.indexStage(gather(logged, g, func(g *commitGroup) int { return len(g.reqs) }), p)
		}
	}()
}

// gather is first and what ch holds now, taken without waiting, up to maxBatch packages
// (size counts those of one item) or until ch is closed.
func gather[T any](ch <-chan T, first T, size func(T) int) []T {
	batch, n := []T{first}, size(first)
	for n < maxBatch {
		select {
		case x, ok := <-ch:
			if !ok {
				return batch
			}
			batch, n = append(batch, x), n+size(x)
		default:
			return batch
		}
	}
	return batch
}

// commitGroup is a group of packages whose events are logged, on its way to the index.
type commitGroup struct {
	reqs  []*commitReq
	twins []*commitReq // the same cases sent again while these were pending
}

// pendingCases are the cases logged and not yet indexed.
type pendingCases struct {
	mu     sync.Mutex
	byCase map[string]*commitGroup
}

func caseOf(rec *index.Package) string { return rec.Department + "\x00" + rec.CaseNo }

// logStage answers the group's cases already archived, attaches its twins of pending cases
// to the group that holds them, and appends the rest's events to the log.
func (a *Archive) logStage(batch []*commitReq, p *pendingCases) *commitGroup {
	g := &commitGroup{}
	var twins []*commitReq
	inBatch := map[string]bool{}
	for _, r := range batch {
		ck := caseOf(r.rec)
		if inBatch[ck] {
			twins = append(twins, r)
			continue
		}
		// Pending first, then archived, under the lock that indexStage takes only after
		// its commit: a case is always found in one or the other.
		p.mu.Lock()
		if owner := p.byCase[ck]; owner != nil {
			owner.twins = append(owner.twins, r)
			p.mu.Unlock()
			continue
		}
		existing, err := a.index.PackageByCase(r.rec.Department, r.rec.CaseNo)
		p.mu.Unlock()
		switch {
		case err == nil:
			r.done <- commitRes{existing: existing, err: index.ErrCaseExists}
			continue
		case !errors.Is(err, index.ErrNotFound):
			r.done <- commitRes{err: err}
			continue
		}
		inBatch[ck] = true
		g.reqs = append(g.reqs, r)
	}
	if len(g.reqs) == 0 {
		return nil
	}
	events := make([]eventlog.Event, len(g.reqs))
	for i, r := range g.reqs {
		events[i] = ingestEvent(r.rec, r.sig)
	}
	first, err := a.elog.Append(context.Background(), events...)
	if err != nil {
		err = fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
		for _, r := range append(g.reqs, twins...) {
			r.done <- commitRes{err: err}
		}
		return nil
	}
	p.mu.Lock()
	for i, r := range g.reqs {
		r.rec.LogIndex = first + uint64(i)
		p.byCase[caseOf(r.rec)] = g
	}
	g.twins = append(g.twins, twins...)
	p.mu.Unlock()
	a.log.Debug("commit group logged", "packages", len(g.reqs), "first_event", first)
	return g
}

// indexStage writes logged groups to the index in one transaction and answers them and
// their twins.
func (a *Archive) indexStage(groups []*commitGroup, p *pendingCases) {
	var reqs []*commitReq
	for _, g := range groups {
		reqs = append(reqs, g.reqs...)
	}
	recs := make([]*index.Package, len(reqs))
	for i, r := range reqs {
		recs[i] = r.rec
	}
	results, err := a.index.CommitPackages(recs)
	byCase := map[string]commitRes{}
	for i, r := range reqs {
		// On an error the events stand (the log never forgets); the packages are adopted
		// from them at the next start, or re-sent by their departments.
		res := commitRes{err: err}
		if err == nil {
			res = commitRes{existing: results[i].Existing, err: results[i].Err}
		}
		byCase[caseOf(r.rec)] = res
		r.done <- res
	}
	var twins []*commitReq
	p.mu.Lock()
	for _, g := range groups {
		for _, r := range g.reqs {
			delete(p.byCase, caseOf(r.rec))
		}
		twins = append(twins, g.twins...)
	}
	p.mu.Unlock()
	for _, r := range twins {
		res := byCase[caseOf(r.rec)]
		if res.err == nil || errors.Is(res.err, index.ErrCaseExists) {
			// Its twin is archived: a re-send, answered with the package it made.
			existing, err := a.index.PackageByCase(r.rec.Department, r.rec.CaseNo)
			res = commitRes{existing: existing, err: index.ErrCaseExists}
			if err != nil {
				res = commitRes{err: err}
			}
		}
		r.done <- res
	}
	a.log.Debug("commit groups indexed", "groups", len(groups), "packages", len(reqs))
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

// stopCommitter finishes the groups in flight; call it when no ingest runs any more.
func (a *Archive) stopCommitter() {
	if a.commits != nil {
		close(a.commits)
		<-a.committerDone
		a.commits = nil
	}
}
