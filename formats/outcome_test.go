package formats

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats/pdfa"
)

// Outcome says what Prepare makes: for the example case's files, with Ghostscript as the
// set-up installs it and without, the target and tool Prepare records are those Outcome
// names.
func TestOutcomeIsWhatPrepareMakes(t *testing.T) {
	gs, err := pdfa.Find()
	if err != nil {
		t.Fatalf("Ghostscript (the set-up installs it): %v", err)
	}
	for _, tools := range []*Tools{{PDFA: gs, WorkDir: t.TempDir()}, {WorkDir: t.TempDir()}} {
		for _, name := range []string{"application-form.json", "scan-application.jpg", "decision.pdf"} {
			data, err := os.ReadFile("../examples/case-001/" + name)
			if err != nil {
				t.Fatal(err)
			}
			sum := sm3.Sum(data)
			p, err := Prepare(context.Background(), bytes.NewReader(data), sum[:], name,
				PrepareOptions{NewSink: func() (Sink, error) { return &MemSink{}, nil }, NewHash: sm3.New, Tools: tools})
			if err != nil {
				t.Fatalf("%s (Ghostscript %v): %v", name, tools.PDFA != nil, err)
			}
			o := tools.Outcome(p.Rendition.ID)
			if p.Original != nil {
				o = tools.Outcome(p.Original.ID)
			}
			target := ""
			if p.Conversion != nil {
				target = p.Conversion.Target
			}
			if o.Target != target || o.Tool != p.Tool {
				t.Errorf("%s (Ghostscript %v): Outcome %+v, Prepare made %q with %q", name, tools.PDFA != nil, o, target, p.Tool)
			}
		}
	}
	if o := (&Tools{}).Outcome(Identification{PUID: "fmt/999", MIME: "application/octet-stream"}); o.Action != ActionRefuse || o.Target != "" {
		t.Errorf("an unknown format: %+v", o)
	}
}
