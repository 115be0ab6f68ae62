package archive

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dangan-archive/dangan/formats/text"
	"github.com/dangan-archive/dangan/search"
	"github.com/dangan-archive/dangan/storage/index"
)

// ErrSearchNotReady is returned while the search index is rebuilt from the index.
var ErrSearchNotReady = fmt.Errorf("%w: %w", ErrUnavailable, search.ErrNotReady)

const searchRebuildKey = "search-rebuilding" // State: set while a rebuilt search index fills

// Ingest comes first. While ingests run without a gap, the search indexer leaves its queue
// alone for searchPatience, then does one batch every searchYield; it catches up at full
// speed in the first gap. Indexing is cheap, but each batch is a segment that the search
// index's background merges fold into ever larger ones, and at a million cases those
// merges took a fifth of the two cores from ingest (bench scale: ingest near 40,000
// packages at 0.73 of an empty archive's rate with a batch every two seconds, 0.93 with
// none). A burst of ingests shorter than searchPatience therefore runs as fast at a million
// as in an empty archive, and a longer one still keeps the search at most a few minutes
// behind plus what the batches have not caught up.
const (
	searchPatience = 5 * time.Minute // Config.SearchPatience's default
	searchYield    = 2 * time.Second
)

// searcher keeps the full-text index up to date from the index's search queue.
type searcher struct {
	ix      search.Index
	ready   atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
	indexed atomic.Uint64
	noTool  atomic.Bool
	closed  bool
}

// openSearch opens the search index in dir. A missing or damaged one (with packages in the
// index) is started again empty and filled in the background from the index; searches
// answer ErrSearchNotReady until it is.
func (a *Archive) openSearch(dir string) error {
	s := &searcher{}
	_, statErr := os.Stat(dir)
	ix, err := search.OpenBleve(dir)
	if err != nil {
		// Derived, so started again: an earlier dangan's index is removed, a damaged one set
		// aside for a look.
		if errors.Is(err, search.ErrOldMapping) {
			a.log.Warn("the search index was made by an earlier version: rebuilding it", "err", err)
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove the earlier search index: %w", err)
			}
		} else {
			aside := dir + ".damaged-" + time.Now().UTC().Format("20060102T150405")
			a.log.Error("the search index does not open: it is set aside and rebuilt", "err", err, "aside", aside)
			if err := os.Rename(dir, aside); err != nil {
				return fmt.Errorf("set the damaged search index aside: %w", err)
			}
		}
		if ix, err = search.OpenBleve(dir); err != nil {
			return err
		}
		statErr = os.ErrNotExist
	}
	s.ix = ix
	n, err := a.index.Count()
	if err != nil {
		ix.Close()
		return fmt.Errorf("count the packages for the search index: %w", err)
	}
	rebuilding := false
	a.index.Record(index.State, searchRebuildKey, &rebuilding)
	if os.IsNotExist(statErr) && n > 0 {
		a.log.Warn("the search index is missing: rebuilding it from the index in the background", "packages", n)
		if err := a.index.PutRecord(index.State, searchRebuildKey, true); err != nil {
			return err
		}
		if _, err := a.index.QueueAllForSearch(); err != nil {
			return fmt.Errorf("queue the packages for the search index: %w", err)
		}
		rebuilding = true
	}
	s.ready.Store(!rebuilding)
	a.search = s
	return nil
}

// RebuildSearch drops the search index and fills it again from the index, in the
// background; searches answer ErrSearchNotReady until it is done.
func (a *Archive) RebuildSearch(ctx context.Context) (int, error) {
	if err := a.index.PutRecord(index.State, searchRebuildKey, true); err != nil {
		return 0, err
	}
	a.search.ready.Store(false)
	return a.index.QueueAllForSearch()
}

func (a *Archive) startSearchIndexer() {
	ctx, cancel := context.WithCancel(context.Background())
	a.search.stop, a.search.done = cancel, make(chan struct{})
	go a.runSearchIndexer(ctx)
}

func (a *Archive) stopSearchIndexer() {
	if a.search != nil && a.search.stop != nil {
		a.search.stop()
		<-a.search.done
		a.search.stop = nil
	}
}

func (a *Archive) stopSearch() error {
	if a.search == nil || a.search.closed {
		return nil
	}
	a.stopSearchIndexer()
	a.search.closed = true
	return a.search.ix.Close()
}

// runSearchIndexer drains the search queue in batches.
func (a *Archive) runSearchIndexer(ctx context.Context) {
	defer close(a.search.done)
	patience := a.cfg.SearchPatience
	if patience <= 0 {
		patience = searchPatience
	}
	last := time.Now()
	var busySince time.Time // since when ingests have run without a gap
	for ctx.Err() == nil {
		for len(a.slots) > 0 && ctx.Err() == nil {
			if busySince.IsZero() {
				busySince = time.Now()
			}
			if time.Since(busySince) >= patience && time.Since(last) >= searchYield {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(a.slots) == 0 {
			busySince = time.Time{}
		}
		last = time.Now()
		n, err := a.indexSearchBatch(ctx, 64)
		if err != nil && ctx.Err() == nil {
			a.log.Error("search indexing", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		if !a.search.ready.Load() {
			if left, err := a.index.SearchQueue(1); err == nil && len(left) == 0 {
				a.index.PutRecord(index.State, searchRebuildKey, false)
				a.search.ready.Store(true)
				a.log.Info("the search index is ready", "cases", a.search.indexed.Load())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// indexSearchBatch indexes up to n queued packages.
func (a *Archive) indexSearchBatch(ctx context.Context, n int) (int, error) {
	queued, err := a.index.SearchQueue(n)
	if err != nil || len(queued) == 0 {
		return 0, err
	}
	var docs []search.Doc
	var gone []string
	for _, q := range queued {
		p, err := a.index.Package(q.ID)
		if errors.Is(err, index.ErrNotFound) || err == nil && p.Tombstone != nil {
			gone = append(gone, q.ID) // destroyed: its words go with it
			continue
		} else if err != nil {
			return 0, err
		}
		docs = append(docs, a.searchDoc(ctx, p))
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if len(docs) > 0 {
		if err := a.search.ix.Put(ctx, docs); err != nil {
			return 0, err
		}
	}
	if len(gone) > 0 {
		if err := a.search.ix.Delete(ctx, gone); err != nil {
			return 0, err
		}
	}
	if err := a.index.SearchIndexed(queued); err != nil {
		return 0, err
	}
	a.search.indexed.Add(uint64(len(queued)))
	return len(queued), nil
}

// searchDoc is what the search index holds of a package: its record, its case's
// decision, opinions, steps and applicant, and the text of its archival renditions.
func (a *Archive) searchDoc(ctx context.Context, p *index.Package) search.Doc {
	d := search.Doc{ID: p.ID, Department: p.Department, DepartmentName: p.DepartmentName, Fonds: p.Fonds,
		ArchivalCode: p.ArchivalCode, CaseNo: p.CaseNo, Title: p.Title, ItemCode: p.ItemCode, ItemName: p.ItemName,
		Year: p.Year, Retention: p.Retention, State: p.State, FinishedAt: p.FinishedAt, IngestedAt: p.IngestedAt,
		Sharing: SharingClass(p.Sharing), Open: p.Opened != nil}
	var clearID string
	if ct, err := a.caseText(p.ID); err == nil && ct != nil {
		// The number is indexed blind: found by an exact number, never read back.
		d.Decision, d.Opinions, d.Steps, d.ApplicantName, d.ApplicantID = ct.Decision, ct.Opinions, ct.Steps, ct.Applicant, a.blindID(ct.ApplicantID)
		clearID = ct.ApplicantID
	} else if err != nil {
		a.log.Warn("case text not read for the search index", "package", p.ID, "err", err)
	}
	var words []string
	size := 0
	for _, doc := range p.Documents {
		for _, e := range doc.Encoded {
			if !slices.Contains(d.Formats, e.Format) {
				d.Formats = append(d.Formats, e.Format)
			}
		}
		if len(doc.Encoded) == 0 || size >= text.Limit {
			continue
		}
		e := doc.Encoded[0] // the archival rendition
		rc, err := a.getPinnedRange(ctx, p.Key, p.Version, e.DataOffset, e.DataLength)
		if err != nil {
			a.log.Warn("search: document not read", "package", p.ID, "document", doc.N, "err", err)
			continue
		}
		s, err := text.Extract(ctx, base64.NewDecoder(base64.StdEncoding, newlineStripper{rc}), e.MIME)
		rc.Close()
		switch {
		case errors.Is(err, text.ErrUnsupported):
		case errors.Is(err, text.ErrNoTool):
			if !a.search.noTool.Swap(true) {
				a.log.Warn("search: PDF text is not indexed: install poppler-utils (pdftotext)")
			}
		case err != nil:
			a.log.Warn("search: no text from a document", "package", p.ID, "document", doc.N, "err", err)
		default:
			words = append(words, s)
			size += len(s)
		}
	}
	d.Text = strings.Join(words, "\n")
	if len(d.Text) > text.Limit {
		d.Text = strings.ToValidUTF8(d.Text[:text.Limit], "") // a cut rune goes
	}
	if len(clearID) >= 2 {
		d.Text = strings.ReplaceAll(d.Text, clearID, "＊＊＊") // the number is found blind only
	}
	if p.Opened != nil {
		// The public search finds an opened case only by what its public copy shows.
		d.OpenText, _ = a.redaction.Text(strings.Join([]string{p.Title, p.ItemName, p.DepartmentName, d.Text}, "\n"),
			[]string{d.ApplicantName, clearID})
	}
	return d
}

// SearchQuery is a full-text search as a caller asks it (search.Query without the parts
// the archive decides: which departments, and whether personal data may match).
type SearchQuery struct {
	search.Query
	Department string // narrow to one department (the archive role); a department gets its own
	// Shared (a department) searches the records other departments share with it too:
	// those shared unconditionally and those it holds grants for. Such a search matches no
	// personal data.
	Shared bool
}

// SearchHit is one hit with its package's record.
type SearchHit struct {
	Package    *index.Package
	Highlights map[string][]string
}

// SearchResult is one page of a search.
type SearchResult struct {
	Total  uint64
	Hits   []SearchHit
	Facets map[string][]search.FacetCount
	// FacetsOf, when not zero, is how many of the newest hits the facets count (a broad search).
	FacetsOf uint64
	Next     string
}

// Search is the full-text search: the archive searches every department, a department its
// own. Both may match the applicant's name and ask for an ID number (exactly); no hit
// carries either. The search is logged without its words.
func (a *Archive) Search(ctx context.Context, who Principal, q SearchQuery) (*SearchResult, error) {
	sq := q.Query
	dept, err := departmentScope(who, q.Department, "records", RoleArchive)
	if err != nil {
		return nil, err
	}
	if dept != "" {
		sq.Departments = []string{dept}
	}
	if fd := sq.Filters[search.FacetDepartment]; who.Role == RoleDepartment && !q.Shared && len(fd) > 0 && (len(fd) != 1 || fd[0] != who.Org) {
		return nil, fieldErr("department", fmt.Errorf("%w: a department searches only its own records", ErrForbidden))
	}
	sq.Personal = true
	if q.Shared && who.Role == RoleDepartment {
		ids, err := a.grantedIDs(who.Org)
		if err != nil {
			return nil, err
		}
		sq.Shared = &search.Shared{Classes: []string{SharingOpen}, IDs: ids}
		sq.Personal = false
		if sq.ApplicantID != "" {
			return nil, fieldErr("applicant_id", fmt.Errorf("%w: a search of shared records does not take an ID number", ErrInvalidCase))
		}
	}
	if sq.Limit == 0 {
		sq.Limit = 20
	}
	if sq.Limit < 0 || sq.Limit > maxPage {
		return nil, fieldErr("limit", fmt.Errorf("%w: limit is 1 to %d", ErrInvalidCase, maxPage))
	}
	if a.search == nil || !a.search.ready.Load() {
		return nil, ErrSearchNotReady
	}
	sq.ApplicantID = a.blindID(sq.ApplicantID)
	res, err := a.search.ix.Search(ctx, sq)
	if errors.Is(err, search.ErrBadQuery) {
		field := "q"
		if errors.Is(err, search.ErrBadCursor) {
			field = "cursor"
		}
		return nil, fieldErr(field, fmt.Errorf("%w: %w", ErrInvalidCase, err))
	} else if err != nil {
		return nil, err
	}
	out := &SearchResult{Total: res.Total, Facets: res.Facets, FacetsOf: res.FacetsOf, Next: res.Next, Hits: []SearchHit{}}
	for _, h := range res.Hits {
		p, err := a.index.PackageRecord(h.ID)
		if err != nil {
			continue // gone since it was indexed
		}
		out.Hits = append(out.Hits, SearchHit{Package: p, Highlights: h.Highlights})
	}
	a.log.Info("records searched", "who", who.String(), "department", q.Department, "words", sq.Words != "",
		"exact", sq.Exact != "", "shared", sq.Shared != nil, "applicant_id", sq.ApplicantID != "", "total", res.Total, "returned", len(out.Hits))
	return out, nil
}

// SearchSettled reports whether the search index has nothing left to do: nothing queued and
// no background merge running.
func (a *Archive) SearchSettled() bool {
	if a.search == nil {
		return true
	}
	if q, err := a.index.SearchQueue(1); err != nil || len(q) > 0 {
		return false
	}
	m, ok := a.search.ix.(interface{ Merging() bool })
	return !ok || !m.Merging()
}

// SearchStatus says whether the search index is ready and how many packages wait for it.
func (a *Archive) SearchStatus() (ready bool, queued int, indexed uint64) {
	queued, _ = a.index.SearchQueueLen()
	if a.search == nil {
		return false, queued, 0
	}
	n, _ := a.search.ix.Count()
	return a.search.ready.Load(), queued, n
}

// searchDir is where the search index lives.
func searchDir(cfg Config) string { return filepath.Join(cfg.DataDir, "search") }
