package eventlog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing/merkle"
)

// Errors of proof verification beyond the checkpoint's own (checkpoint.go).
var (
	ErrInclusion = errors.New("inclusion proof invalid")
	ErrChain     = errors.New("renewal chain broken")
	ErrWitness   = errors.New("witnessed checkpoint invalid")
)

// Proof is the offline evidence that an event is in the log and existed at a time: a chain
// of links. The first link holds the event itself; each further link holds the timestamp
// event that logged the previous link's token, proven into a later, renewed checkpoint.
// Witnessed, when present, shows a cosigned checkpoint consistent with the last link.
type Proof struct {
	Links     []Link     `json:"links"`
	Witnessed *Witnessed `json:"witnessed,omitempty"`
}

// Link is one event proven into one signed, timestamped checkpoint.
type Link struct {
	Index      uint64           `json:"index"`
	Event      string           `json:"event"` // the canonical encoding; its leaf hash is proven
	Inclusion  [][]byte         `json:"inclusion"`
	Checkpoint SignedCheckpoint `json:"checkpoint"`
}

// Witnessed is a later checkpoint cosigned by witnesses, with the consistency proof from
// the last link's checkpoint to it.
type Witnessed struct {
	Checkpoint  SignedCheckpoint `json:"checkpoint"`
	Consistency [][]byte         `json:"consistency"`
}

// Prove builds the evidence for event index: the first checkpoint that holds it (made now
// when none does yet), the renewals after it, and the latest cosigned checkpoint.
func (l *Log) Prove(ctx context.Context, index uint64) (*Proof, error) {
	sc, size, err := l.covering(ctx, index)
	if err != nil {
		return nil, err
	}
	link, err := l.link(ctx, index, size, sc)
	if err != nil {
		return nil, err
	}
	p := &Proof{Links: []Link{*link}}
	for _, r := range l.renewalsAfter(size) {
		j, ok := l.subjectIndex(TypeTimestamp, timestampSubject(size))
		if !ok || j >= r {
			continue // this renewal does not cover the previous token
		}
		rc, err := l.CheckpointAt(r)
		if err != nil {
			return nil, err
		}
		link, err := l.link(ctx, j, r, rc)
		if err != nil {
			return nil, err
		}
		p.Links = append(p.Links, *link)
		size = r
	}
	if w, wsize := l.latestCosigned(); w != nil && wsize >= size {
		cons, err := l.ConsistencyProof(size, wsize)
		if err != nil {
			return nil, err
		}
		p.Witnessed = &Witnessed{Checkpoint: *w, Consistency: cons}
	}
	return p, nil
}

func (l *Log) link(ctx context.Context, index, size uint64, sc *SignedCheckpoint) (*Link, error) {
	ev, err := l.event(ctx, index)
	if err != nil {
		return nil, err
	}
	incl, err := l.InclusionProof(index, size)
	if err != nil {
		return nil, err
	}
	return &Link{Index: index, Event: string(ev), Inclusion: incl, Checkpoint: *sc}, nil
}

// ProofResult is what verifying a proof establishes.
type ProofResult struct {
	Event     Event     // the proven event (the first link's)
	Index     uint64    // its index in the log
	Origin    string    // the log
	Time      time.Time // the first token's time: the event existed then
	Renewals  int       // links after the first
	Witnesses []string  // witnesses whose cosignatures verified
	Steps     []Step    // every check, in order
}

// Step is one check of a proof.
type Step struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// VerifyProof checks a proof offline against trusted roots. It returns the result so far
// and an error wrapping the specific reason at the first failure.
func VerifyProof(p *Proof, roots *smx509.CertPool) (*ProofResult, error) {
	return VerifyProofAt(p, roots, time.Now())
}

// VerifyProofAt is VerifyProof at a given present time (for the warning that the last
// timestamp needs renewal).
func VerifyProofAt(p *Proof, roots *smx509.CertPool, now time.Time) (*ProofResult, error) {
	res := &ProofResult{}
	step := func(check string, err error, detail string) error {
		if err != nil {
			res.Steps = append(res.Steps, Step{Check: check, Detail: err.Error()})
			return err
		}
		res.Steps = append(res.Steps, Step{Check: check, OK: true, Detail: detail})
		return nil
	}
	if len(p.Links) == 0 {
		return res, step("proof", fmt.Errorf("%w: no links", ErrInclusion), "")
	}
	var prev *CheckpointInfo
	var prevTokenSum string
	for i := range p.Links {
		ln := &p.Links[i]
		info, err := VerifyCheckpoint(&ln.Checkpoint, roots)
		if err := step(fmt.Sprintf("checkpoint %d", i), err, ""); err != nil {
			return res, err
		}
		res.Steps[len(res.Steps)-1].Detail = fmt.Sprintf("%s, size %d, signed by %q, timestamped %s by %q",
			info.Origin, info.Size, info.Signer, info.TokenTime.Format(time.RFC3339), info.TokenBy)
		ev, err := ParseEvent([]byte(ln.Event))
		if err != nil {
			return res, step(fmt.Sprintf("event %d", i), fmt.Errorf("%w: %v", ErrInclusion, err), "")
		}
		if err := merkle.SM3.VerifyInclusion(ln.Index, info.Size, merkle.SM3.LeafHash([]byte(ln.Event)), ln.Inclusion, info.Root); err != nil {
			return res, step(fmt.Sprintf("inclusion %d", i), fmt.Errorf("%w: event %d in the tree of %d: %v", ErrInclusion, ln.Index, info.Size, err), "")
		}
		step(fmt.Sprintf("inclusion %d", i), nil, fmt.Sprintf("event %d (%s %s) is in the tree of %d", ln.Index, ev.Type, ev.Subject, info.Size))
		if i == 0 {
			res.Event, res.Index, res.Origin, res.Time = ev, ln.Index, info.Origin, info.TokenTime
		} else {
			// This link must log the previous link's token, while that token was still valid.
			var err error
			switch {
			case info.Origin != prev.Origin:
				err = fmt.Errorf("%w: link %d is from log %q, not %q", ErrChain, i, info.Origin, prev.Origin)
			case ev.Type != TypeTimestamp || ev.Subject != timestampSubject(prev.Size) || ev.Digest != prevTokenSum:
				err = fmt.Errorf("%w: link %d does not log the token of checkpoint %d", ErrChain, i, prev.Size)
			case info.TokenTime.After(prev.TokenCert.NotAfter):
				err = fmt.Errorf("%w: renewed at %s, after the TSA certificate of link %d expired (%s)", ErrChain,
					info.TokenTime.Format(time.RFC3339), i-1, prev.TokenCert.NotAfter.Format(time.RFC3339))
			case info.TokenTime.After(prev.SignerCert.NotAfter):
				err = fmt.Errorf("%w: renewed at %s, after the checkpoint signer of link %d expired", ErrChain, info.TokenTime.Format(time.RFC3339), i-1)
			}
			if err := step(fmt.Sprintf("renewal %d", i), err, fmt.Sprintf("the token of checkpoint %d was renewed at %s, while its certificates were valid",
				prev.Size, info.TokenTime.Format(time.RFC3339))); err != nil {
				return res, err
			}
			res.Renewals++
		}
		sum := sm3.Sum(ln.Checkpoint.Token)
		prev, prevTokenSum = info, hex.EncodeToString(sum[:])
	}
	if now.After(prev.TokenCert.NotAfter) {
		res.Steps = append(res.Steps, Step{Check: "renewal", OK: true, Detail: fmt.Sprintf(
			"the latest timestamp's TSA certificate expired on %s: the evidence holds, but renew it (dangan log renew) and fetch it again",
			prev.TokenCert.NotAfter.Format("2006-01-02"))})
	}
	if w := p.Witnessed; w != nil {
		info, err := VerifyCheckpoint(&w.Checkpoint, roots)
		if err == nil && info.Origin != prev.Origin {
			err = fmt.Errorf("witnessed checkpoint is from log %q, not %q", info.Origin, prev.Origin)
		}
		if err == nil {
			err = merkle.SM3.VerifyConsistency(prev.Size, info.Size, prev.Root, info.Root, w.Consistency)
		}
		if err != nil {
			return res, step("witnessed", fmt.Errorf("%w: %v", ErrWitness, err), "")
		}
		if len(w.Checkpoint.Cosignatures) == 0 {
			return res, step("witnessed", fmt.Errorf("%w: no cosignature", ErrWitness), "")
		}
		for _, cs := range w.Checkpoint.Cosignatures {
			if _, err := VerifyCosignature(&cs, w.Checkpoint.Body, roots); err != nil {
				return res, step("cosignature", err, "")
			}
			res.Witnesses = append(res.Witnesses, cs.Witness)
			step("cosignature", nil, fmt.Sprintf("witness %q cosigned the checkpoint of size %d on %s; it is consistent with size %d",
				cs.Witness, info.Size, cs.Time.Format(time.RFC3339), prev.Size))
		}
	}
	return res, nil
}
