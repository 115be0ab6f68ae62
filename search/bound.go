package search

import (
	"context"

	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
)

// upperBound is at most how many cases a query's words can match, from the term dictionary
// alone: every word and phrase needs all its terms (its CJK character pairs) in one field,
// so a word matches at most as many cases as its rarest term, summed over the fields it is
// looked for in, and the query at most as many as its rarest word. ok is false for a query
// without words (an exact number or filters alone), which the count answers.
func (b *Bleve) upperBound(ctx context.Context, q Query) (bound uint64, ok bool) {
	an := b.ix.Mapping().AnalyzerNamed(cjk.AnalyzerName)
	if an == nil {
		return 0, false
	}
	r, err := b.reader()
	if err != nil {
		return 0, false
	}
	defer r.Close()
	fields := wordFieldsFor(q.Personal)
	df := func(field, term string) uint64 {
		tfr, err := r.TermFieldReader(ctx, []byte(term), field, false, false, false)
		if err != nil {
			return ^uint64(0)
		}
		defer tfr.Close()
		return tfr.Count()
	}
	for _, words := range append([]string{q.Words}, q.Within...) {
		phrases, singles, err := terms(words)
		if err != nil {
			return 0, false
		}
		for _, w := range append(phrases, singles...) {
			toks := an.Analyze([]byte(w))
			if len(toks) == 0 {
				return 0, false // a word of no terms: leave it to the count
			}
			var word uint64
			for _, f := range fields {
				least := ^uint64(0)
				for _, t := range toks {
					least = min(least, df(f, string(t.Term)))
				}
				if least == ^uint64(0) {
					return 0, false
				}
				word += least
			}
			if !ok || word < bound {
				bound, ok = word, true
			}
		}
	}
	return bound, ok
}
