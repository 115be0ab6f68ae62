package archive

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/storage/index"
)

// Migration planning (日常迁移). When the format policy or a converter changes, the plan
// lists the documents whose archival copy the policy would now make differently from the
// one their package holds: by the original's format, what it was made with and what it
// would be made with now, with counts and bytes. It reads every package's record (an
// explicit command, never a request).

// MigrationPlan is the documents the policy would now make differently.
type MigrationPlan struct {
	Packages  int              `json:"packages"`  // packages looked at
	Documents int              `json:"documents"` // their documents
	Groups    []MigrationGroup `json:"groups"`    // those that differ, by what and how
}

// MigrationGroup is the documents of one source format made one way and now another.
type MigrationGroup struct {
	SourcePUID string `json:"source_puid"`
	SourceName string `json:"source_name"`
	// Made is what the package holds: the archival copy's target ("" when the original is
	// it) and its tool ("" when not recorded, in packages archived before tools were kept).
	MadeTarget string          `json:"made_target"`
	MadeTool   string          `json:"made_tool,omitempty"`
	Now        formats.Outcome `json:"now"`
	// Migratable is false when the policy now refuses the format: nothing can be made.
	Migratable bool     `json:"migratable"`
	Documents  int      `json:"documents"`
	Packages   int      `json:"packages"`
	Bytes      int64    `json:"bytes"` // of the originals
	Examples   []string `json:"examples"`
}

// madeTarget is what a document's archival rendition is, as Outcome names targets: as its
// record says, or, in a record written before targets were kept, from its format (a PDF
// rendition is PDF/A-2b unless a warning says it is a plain PDF).
func madeTarget(d index.Document) string {
	if d.Target != "" {
		return d.Target
	}
	e := d.Encoded[0]
	switch {
	case e.MIME == "application/xml" || e.MIME == "text/xml":
		return "XML"
	case e.MIME == "application/pdf":
		for _, w := range d.Warnings {
			if strings.Contains(w, "not PDF/A-2b") {
				return "PDF"
			}
		}
		return "PDF/A-2b"
	}
	return e.Format
}

// PlanMigration compares every package's documents with what the policy would now make
// (the archive and the admin). progress, when set, is told how many packages are done.
func (a *Archive) PlanMigration(ctx context.Context, who Principal, progress func(done int)) (*MigrationPlan, error) {
	if who.Role != RoleArchive && who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: migration is planned by the archive or the administrator", ErrForbidden)
	}
	plan := &MigrationPlan{Groups: []MigrationGroup{}}
	groups := map[string]*MigrationGroup{}
	seen := map[string]string{} // group → the last package counted in it
	err := a.index.ForEachPackageWithDocuments(func(p *index.Package) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.Tombstone != nil || p.Transfer != nil {
			return nil // destroyed, or held by the county archive, which migrates its own
		}
		plan.Packages++
		if progress != nil && plan.Packages%1000 == 0 {
			progress(plan.Packages)
		}
		for _, d := range p.Documents {
			plan.Documents++
			src, now, differs := a.migrationOf(d)
			if !differs {
				continue
			}
			made := ""
			if !d.Encoded[0].Original {
				made = madeTarget(d)
			}
			key := strings.Join([]string{src.Format, made, d.Tool, now.Action, now.Target, now.Tool}, "\x00")
			g := groups[key]
			if g == nil {
				g = &MigrationGroup{SourcePUID: src.Format, SourceName: src.FormatName, MadeTarget: made, MadeTool: d.Tool, Now: now,
					Migratable: now.Action != formats.ActionRefuse}
				groups[key] = g
			}
			g.Documents++
			g.Bytes += src.Size
			if seen[key] != p.ID {
				seen[key] = p.ID
				g.Packages++
				if len(g.Examples) < 5 {
					g.Examples = append(g.Examples, p.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		plan.Groups = append(plan.Groups, *g)
	}
	slices.SortFunc(plan.Groups, func(x, y MigrationGroup) int { return y.Documents - x.Documents })
	a.log.Info("migration planned", "packages", plan.Packages, "documents", plan.Documents, "groups", len(plan.Groups))
	return plan, nil
}
