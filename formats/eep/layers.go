package eep

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"

	"github.com/beevik/etree"
)

// deepest is the depth of the innermost layer (0 for an original package) and how many
// documents it holds.
func (s *Scan) deepest() (depth, documents int) {
	for _, d := range s.Documents {
		depth = max(depth, d.Depth)
	}
	for _, d := range s.Documents {
		if d.Depth == depth {
			documents++
		}
	}
	return depth, documents
}

// Versions are the record's documents in order, each with its versions: the newest (from
// the outermost layer that revises it) first, the original package's last. An original
// package's documents have one version each.
func (s *Scan) Versions() [][]ScannedDocument {
	deepest, _ := s.deepest()
	var out [][]ScannedDocument
	bySeq := map[string]int{}
	for _, d := range s.Documents {
		if d.Depth == deepest {
			bySeq[d.Seq] = len(out)
			out = append(out, []ScannedDocument{d})
		}
	}
	for depth := deepest - 1; depth >= 0; depth-- {
		for _, d := range s.Documents {
			if i, ok := bySeq[d.Seq]; ok && d.Depth == depth {
				out[i] = append([]ScannedDocument{d}, out[i]...)
			}
		}
	}
	return out
}

// readLayers finds the previous packages nested in an amended one (each 被签名对象 inside
// another, with the 电子签名块 that follows it), reads their signatures and hashes their
// signed bytes in a second pass over the outermost one's span.
func (s *Scan) readLayers(r io.ReaderAt, occurs []Occurrence, opts ScanOptions) error {
	var signed, blocks []Occurrence
	for _, o := range occurs {
		switch {
		case o.Name == "被签名对象" && o.Level > 0:
			signed = append(signed, o)
		case o.Name == "电子签名块" && o.Level == 0:
			blocks = append(blocks, o)
		}
	}
	slices.SortFunc(signed, func(a, b Occurrence) int { return a.Level - b.Level })
	prefix := ""
	for _, so := range signed {
		prefix += "修改封装内容/原封装包/被签名对象/"
		l := &Layer{SignedSpan: [2]int64{so.Start, so.End}, Type: s.Fields[prefix+"封装包类型"], Created: s.Fields[prefix+"封装包创建时间"]}
		var blk *Occurrence
		for i := range blocks {
			if b := &blocks[i]; b.Start >= so.End && (blk == nil || b.Start < blk.Start) {
				blk = b
			}
		}
		if blk != nil && blk.End-blk.Start <= sigTail {
			b := make([]byte, blk.End-blk.Start)
			if _, err := r.ReadAt(b, blk.Start); err != nil && err != io.EOF {
				return fmt.Errorf("read a previous 电子签名块: %w", err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(b); err == nil && doc.Root() != nil {
				for _, el := range doc.Root().SelectElements("电子签名") {
					l.Signatures = append(l.Signatures, &ScannedSignature{Signature: parseSignature(el)})
				}
			}
		}
		s.Layers = append(s.Layers, l)
	}
	return s.hashLayers(r, opts)
}

// hashLayers reads the outermost previous layer's span once, feeding every layer's hashes
// the bytes of its own span, with the namespace declaration put back on its apex.
func (s *Scan) hashLayers(r io.ReaderAt, opts ScanOptions) error {
	if len(s.Layers) == 0 {
		return nil
	}
	type sink struct {
		w          io.Writer
		sm3        hash.Hash
		start, end int64
		inject     int64 // where the declaration goes back: after the element name; -1: it is there
		err        error
	}
	open := int64(len("<被签名对象"))
	sinks := make([]*sink, len(s.Layers))
	for i, l := range s.Layers {
		k := &sink{sm3: opts.NewHash(), start: l.SignedSpan[0], end: l.SignedSpan[1], inject: l.SignedSpan[0] + open}
		ws := []io.Writer{k.sm3}
		for _, sg := range l.Signatures {
			if h := newSpanHash(sg, opts); h != nil {
				ws = append(ws, h)
			}
		}
		k.w = io.MultiWriter(ws...)
		head := make([]byte, min(4096, k.end-k.start))
		if _, err := r.ReadAt(head, k.start); err != nil && err != io.EOF {
			return fmt.Errorf("read a previous 被签名对象: %w", err)
		}
		if end := bytes.IndexByte(head, '>'); end < 0 || bytes.Contains(head[:end], []byte("xmlns=")) {
			k.inject = -1
		}
		sinks[i] = k
	}
	buf := make([]byte, 256<<10)
	from, to := sinks[0].start, sinks[0].end
	for pos := from; pos < to; {
		n := int(min(int64(len(buf)), to-pos))
		m, err := r.ReadAt(buf[:n], pos)
		if m < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			for _, k := range sinks {
				k.err = fmt.Errorf("read the previous 被签名对象: %w", err)
			}
			break
		}
		for _, k := range sinks {
			cs, ce := max(pos, k.start), min(pos+int64(n), k.end)
			if cs >= ce || k.err != nil {
				continue
			}
			part := func(a, b int64) {
				if k.err == nil {
					_, k.err = k.w.Write(buf[a-pos : b-pos])
				}
			}
			if k.inject >= cs && k.inject < ce {
				part(cs, k.inject)
				if k.err == nil {
					_, k.err = io.WriteString(k.w, nsDecl)
				}
				part(k.inject, ce)
			} else {
				part(cs, ce)
			}
		}
		pos += int64(n)
	}
	for i, l := range s.Layers {
		k := sinks[i]
		l.err = k.err
		l.SignedSM3 = k.sm3.Sum(nil)
		for _, sg := range l.Signatures {
			sg.finish(&span{seen: true, start: k.start, end: k.end, err: k.err})
		}
	}
	return nil
}

// Entity is the record as the package now describes it (under EntityPath), without its
// documents: what an amendment repeats in its revision. Only the first 授权 is kept, as
// Fields holds it.
func (s *Scan) Entity() Entity {
	p := s.EntityPath()
	f := func(name string) string { return s.Fields[p+name] }
	year, _ := strconv.Atoi(f("档号/年度"))
	item, _ := strconv.Atoi(f("档号/室编件号"))
	e := Entity{
		ArchiveName: f("来源/档案馆名称"), ArchiveCode: f("来源/档案馆代码"), FondsName: f("来源/全宗名称"), Creator: f("来源/立档单位名称"),
		RecordNo: f("电子文件号"), Fonds: f("档号/全宗号"), Year: year, Retention: f("档号/保管期限"), ItemNo: item,
		Title: f("内容描述/题名"), Abstract: f("内容描述/摘要"), DocNo: f("内容描述/文件编号"), Responsible: f("内容描述/责任者"),
		Date: f("内容描述/日期"), DocKind: f("内容描述/文种"), Classification: f("内容描述/密级"), Language: f("形式特征/语种"),
		Location: f("存储位置"), Notes: append([]string(nil), s.Notes...),
	}
	if to := f("权限管理/授权/授权对象"); to != "" {
		e.Grants = []Grant{{To: to, Action: f("权限管理/授权/授权行为")}}
	}
	if sys := f("信息系统描述"); sys != "" {
		e.Systems = []string{sys}
	}
	return e
}
