package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/signing"
)

var update = flag.Bool("update", false, "regenerate the test vectors in testdata/vectors")

// vector is one evidence proof and the verdict it must get.
type vector struct {
	Description string `json:"description"`
	Error       string `json:"error"` // "" for a valid proof, else the name of the sentinel error
	Proof       Proof  `json:"proof"`
}

var vectorErrors = map[string]error{
	"ErrInclusion":           ErrInclusion,
	"ErrCheckpointSignature": ErrCheckpointSignature,
	"ErrCheckpointToken":     ErrCheckpointToken,
	"ErrCheckpointBody":      ErrCheckpointBody,
	"ErrChain":               ErrChain,
	"ErrWitness":             ErrWitness,
	"ErrCosignature":         ErrCosignature,
}

const vectorDir = "testdata/vectors"

// TestVectors checks the proofs kept in the repository: the valid ones pass, every
// tampered one fails with its own reason. Regenerate with go test -run TestVectors -update.
func TestVectors(t *testing.T) {
	if *update {
		generateVectors(t)
	}
	pemData, err := os.ReadFile(filepath.Join(vectorDir, "roots.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := signing.ParseCertsPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	roots := signing.NewPool(certs...)
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if len(files) < 8 {
		t.Fatalf("%d vectors in %s", len(files), vectorDir)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var v vector
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
			res, err := VerifyProofAt(&v.Proof, roots, now)
			if v.Error == "" {
				if err != nil {
					t.Fatalf("%s: %v", v.Description, err)
				}
				if res.Renewals != 1 || len(res.Witnesses) != 1 {
					t.Fatalf("the valid vector should have one renewal and one witness: %+v", res)
				}
				return
			}
			want, ok := vectorErrors[v.Error]
			if !ok {
				t.Fatalf("unknown error %q", v.Error)
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: got %v, want %v", v.Description, err, want)
			}
			if last := res.Steps[len(res.Steps)-1]; last.OK || last.Detail == "" {
				t.Fatalf("the failing step does not say why: %+v", last)
			}
		})
	}
}

func generateVectors(t *testing.T) {
	a, w, dept, roots := witnessedPair(t, "dangan/vectors-dept", "dangan/vectors-county")
	ctx := context.Background()
	appendN(t, a.Log, 0, 11)
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, a.Log, 11, 6)
	if _, err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, a.Log, 17, 3)
	if _, err := a.WitnessWith(ctx, logWitness{w.Log}); err != nil {
		t.Fatal(err)
	}
	valid, err := a.Prove(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	// A fork of the department's log: same origin and key, event 15 rewritten.
	fork := openTestLog(t, "dangan/vectors-dept", dept, roots)
	appendN(t, fork.Log, 0, 15)
	changed := ev(15)
	changed.Subject = "pkg-rewritten"
	fork.Append(ctx, changed)
	appendN(t, fork.Log, 16, 8)
	fsc, _ := fork.Checkpoint(ctx)
	fc, _ := ParseCheckpoint(fsc.Body)
	lastLink := valid.Links[len(valid.Links)-1]
	lc, _ := ParseCheckpoint(lastLink.Checkpoint.Body)
	forkCons, _ := fork.ConsistencyProof(lc.Size, fc.Size)
	other, _ := a.Prove(ctx, 2)

	clone := func() Proof {
		var p Proof
		b, _ := json.Marshal(valid)
		json.Unmarshal(b, &p)
		return p
	}
	flip := func(b []byte, bit int) { b[bit/8] ^= 1 << (bit % 8) }
	vectors := map[string]vector{}
	add := func(name, desc, errName string, p Proof) {
		vectors[name] = vector{Description: desc, Error: errName, Proof: p}
	}
	add("valid", "an ingest event proven into its checkpoint, renewed once, witnessed by the county archive", "", clone())
	p := clone()
	flip(p.Links[0].Inclusion[1], 100)
	add("inclusion-bit-flipped", "one bit of the inclusion proof flipped", "ErrInclusion", p)
	p = clone()
	p.Links[0].Event = other.Links[0].Event
	add("other-leaf", "the proof of event 6 with the text of event 2", "ErrInclusion", p)
	p = clone()
	p.Links[0].Event = strings.Replace(p.Links[0].Event, "pkg-0006", "pkg-0066", 1)
	add("event-changed", "the proven event's subject changed", "ErrInclusion", p)
	p = clone()
	flip(p.Links[0].Checkpoint.Signature, 300)
	add("checkpoint-wrong-signature", "one bit of the checkpoint's SM2 signature flipped", "ErrCheckpointSignature", p)
	p = clone()
	p.Links[0].Checkpoint.Body = strings.Replace(p.Links[0].Checkpoint.Body, "\n11\n", "\n12\n", 1)
	add("checkpoint-size-changed", "the checkpoint claims another size under the same signature", "ErrCheckpointSignature", p)
	p = clone()
	p.Links[0].Checkpoint.Token = p.Links[1].Checkpoint.Token
	add("checkpoint-other-token", "the checkpoint carries another checkpoint's timestamp", "ErrCheckpointToken", p)
	p = clone()
	p.Links[1].Event = other.Links[0].Event
	p.Links[1].Index = other.Links[0].Index
	p.Links[1].Inclusion = nil
	add("renewal-other-event", "the renewal link proves an event that is not the first token's", "ErrInclusion", p)
	p = clone()
	p.Links = []Link{valid.Links[0], valid.Links[0]}
	add("renewal-not-a-timestamp", "the second link does not log the first link's token", "ErrChain", p)
	p = clone()
	p.Witnessed.Checkpoint = *fsc
	p.Witnessed.Checkpoint.Cosignatures = valid.Witnessed.Checkpoint.Cosignatures
	p.Witnessed.Consistency = forkCons
	add("witness-forked", "a consistency proof into a forked tree of the same log", "ErrWitness", p)
	p = clone()
	flip(p.Witnessed.Checkpoint.Cosignatures[0].Signature, 200)
	add("cosignature-bit-flipped", "one bit of the witness's cosignature flipped", "ErrCosignature", p)

	os.MkdirAll(vectorDir, 0o755)
	old, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	for _, f := range old {
		os.Remove(f)
	}
	for name, v := range vectors {
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(vectorDir, name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(vectorDir, "roots.pem"), signing.CertPEM(append(dept.Roots(), w.pki.Roots()...)...), 0o644); err != nil {
		t.Fatal(err)
	}
}
