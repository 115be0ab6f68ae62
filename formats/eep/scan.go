package eep

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Finding is one structured result of a check: what was checked, where, what was expected
// and what was found. Code is the DA/T 70 item code.
type Finding struct {
	Code     string `json:"code"`
	Item     string `json:"item"`
	Status   string `json:"status"` // pass, fail, warn, skip
	Where    string `json:"where,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Finding statuses.
const (
	Pass = "pass"
	Fail = "fail"
	Warn = "warn"
	Skip = "skip"
)

// DA/T 70 items this package checks.
const (
	CodeFixity       = "GD-1-1"  // 固化信息有效性
	CodeContentAttrs = "GD-1-10" // content vs recorded electronic attributes
	CodePackage      = "GD-1-14" // package unchanged
	CodeMetaComplete = "GD-2-3"  // metadata complete
	CodeMandatory    = "GD-2-4"  // mandatory metadata present
	CodeContentCount = "GD-2-11" // content count matches metadata
	CodeXMLReadable  = "GD-3-1"  // package metadata readable
	CodeFormat       = "GD-3-2"  // documents are in the archival format they claim
)

// ScanOptions supplies the hashes; eep does no cryptography itself.
type ScanOptions struct {
	// NewHash returns the digest used for documents and spans (SM3).
	NewHash func() hash.Hash
	// NewSignedHash returns the hash a signature by the certificate (DER) is computed over
	// (for SM2: SM3 with ZA). Nil: signatures are parsed but not hashed.
	NewSignedHash func(certDER []byte) (hash.Hash, error)
}

// ScannedEncoding is one 编码 as found.
type ScannedEncoding struct {
	ID           string `json:"id"`
	FileName     string `json:"file_name"`
	Format       string `json:"format"`
	Description  string `json:"description"`
	DecodeKey    string `json:"decode_key"`
	DeclaredSize int64  `json:"declared_size"`
	Size         int64  `json:"size"`
	SM3          string `json:"sm3"`
	DataOffset   int64  `json:"data_offset"`
	DataLength   int64  `json:"data_length"`
	err          error
}

// ScannedDocument is one 文档 as found.
type ScannedDocument struct {
	// Depth is how far inside the package's layers the document lies: 0 in its own
	// 被签名对象, 1 in the package an amendment wraps, and so on.
	Depth     int               `json:"depth"`
	ID        string            `json:"id"`
	Seq       string            `json:"seq"`
	Role      string            `json:"role"`
	Title     string            `json:"title"`
	Encodings []ScannedEncoding `json:"encodings"`
}

// ScannedSignature is a 电子签名 or 锁定签名 with the digest of the span it signs, as
// computed from the file's bytes.
type ScannedSignature struct {
	Signature
	SpanDigest []byte // NewSignedHash over the span's bytes
	HashErr    error
	pending    hash.Hash
}

// Layer is an earlier form kept inside an amended (修改型) package: the previous package's
// 被签名对象 and 电子签名块 under 原封装包. Layers[0] is the one directly inside.
type Layer struct {
	Type       string // its 封装包类型
	Created    string // its 封装包创建时间
	SignedSpan [2]int64
	// SignedSM3 is the SM3 of its signed bytes: the file's, with the namespace declaration
	// C14N gives the apex put back (what its own package held).
	SignedSM3  []byte
	Signatures []*ScannedSignature
	err        error
}

// Err is why the layer's signed bytes could not be read (nil when they were).
func (l *Layer) Err() error { return l.err }

// Scan is what reading a package found.
type Scan struct {
	// Type is 封装包类型: 原始型, or 修改型 for an amended package with Layers inside.
	Type       string
	Layers     []*Layer
	Findings   []Finding
	Fields     map[string]string // first text of each element path under 被签名对象, e.g. "封装内容/文件实体块/文件实体/档号/年度"
	Documents  []ScannedDocument
	Notes      []string   // every 附注 of the 文件实体, in order
	Agents     []Agent    // every 机构人员实体
	Businesses []Business // every 业务实体, in order: its id, agent, state, action, basis and description
	Signatures []*ScannedSignature
	Lock       *ScannedSignature
	SignedSM3  []byte // SM3 of the bytes of 被签名对象
	PackageSM3 []byte // SM3 of the whole file
	Size       int64
	SignedSpan [2]int64
	LockedSpan [2]int64
}

// Failed reports whether any finding failed.
func (s *Scan) Failed() bool {
	for _, f := range s.Findings {
		if f.Status == Fail {
			return true
		}
	}
	return false
}

func (s *Scan) add(f Finding) { s.Findings = append(s.Findings, f) }

// sigTail is how much of the end of a package is read first to find the signature blocks.
const sigTail = 4 << 20

// Read reads a package in one streaming pass. It fails only when the file cannot be read;
// every problem with the package itself is a finding.
func Read(r io.ReaderAt, size int64, opts ScanOptions) (*Scan, error) {
	if opts.NewHash == nil {
		return nil, errors.New("eep: ScanOptions.NewHash is required")
	}
	s := &Scan{Fields: map[string]string{}, Size: size}
	sigs, lock, err := readSignatureBlocks(r, size)
	if err != nil {
		return nil, err
	}
	signedHash := opts.NewHash()
	signedWriters := []io.Writer{signedHash}
	lockedWriters := []io.Writer{io.Discard}
	for _, sg := range sigs {
		ss := &ScannedSignature{Signature: sg}
		s.Signatures = append(s.Signatures, ss)
		if h := newSpanHash(ss, opts); h != nil {
			signedWriters = append(signedWriters, h)
		}
	}
	if lock != nil {
		s.Lock = &ScannedSignature{Signature: *lock}
		if h := newSpanHash(s.Lock, opts); h != nil {
			lockedWriters = append(lockedWriters, h)
		}
	}
	signedSpan := &span{w: io.MultiWriter(signedWriters...)}
	lockedSpan := &span{w: io.MultiWriter(lockedWriters...)}
	fileHash := opts.NewHash()
	lx := &lexer{
		src:      io.NewSectionReader(r, 0, size),
		spans:    map[string]*span{"被签名对象": signedSpan, "电子签名块": lockedSpan},
		marks:    map[string]bool{"被签名对象": true, "电子签名块": true},
		newSink:  func() *b64sink { return newB64Sink(opts.NewHash()) },
		fileHash: fileHash,
	}
	parseErr := s.parse(xml.NewDecoder(lx), lx)
	if parseErr != nil {
		// Read the rest so the whole-file digest still means something.
		io.Copy(io.Discard, lx)
		s.add(Finding{Code: CodeXMLReadable, Item: "封装包元数据可读", Status: Fail, Detail: parseErr.Error()})
	} else {
		s.add(Finding{Code: CodeXMLReadable, Item: "封装包元数据可读", Status: Pass, Detail: "XML is well-formed"})
	}
	s.PackageSM3 = fileHash.Sum(nil)
	s.SignedSM3 = signedHash.Sum(nil)
	s.SignedSpan = [2]int64{signedSpan.start, signedSpan.end}
	s.LockedSpan = [2]int64{lockedSpan.start, lockedSpan.end}
	for _, ss := range s.Signatures {
		ss.finish(signedSpan)
	}
	if s.Lock != nil {
		s.Lock.finish(lockedSpan)
	}
	s.Type = s.Fields["封装包类型"]
	if parseErr == nil && s.Type == TypeAmended {
		if err := s.readLayers(r, lx.occurs, opts); err != nil {
			return nil, err
		}
	}
	if parseErr == nil {
		s.checkMetadata()
		s.checkDocuments()
	}
	return s, nil
}

func newSpanHash(ss *ScannedSignature, opts ScanOptions) hash.Hash {
	if opts.NewSignedHash == nil {
		return nil
	}
	if len(ss.Certs) == 0 {
		ss.HashErr = errors.New("the signature carries no certificate")
		return nil
	}
	h, err := opts.NewSignedHash(ss.Certs[0])
	if err != nil {
		ss.HashErr = err
		return nil
	}
	ss.pending = h
	return h
}

func (ss *ScannedSignature) finish(sp *span) {
	if ss.pending == nil {
		return
	}
	switch {
	case !sp.seen || sp.end == 0:
		ss.HashErr = errors.New("the signed element is missing or unterminated")
	case sp.err != nil:
		ss.HashErr = sp.err
	default:
		ss.SpanDigest = ss.pending.Sum(nil)
	}
	ss.pending = nil
}

// parse walks the XML tokens, filling Fields, Documents and counts.
func (s *Scan) parse(dec *xml.Decoder, lx *lexer) error {
	var stack []string
	var text strings.Builder
	inSigned := false
	signedDepth := 0
	var doc *ScannedDocument
	var enc *ScannedEncoding
	dataIdx := 0
	rootSeen := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !rootSeen {
				return errors.New("no root element")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if !rootSeen {
				rootSeen = true
				if name != "电子文件封装包" || t.Name.Space != Namespace {
					return fmt.Errorf("root element is {%s}%s, expected {%s}电子文件封装包", t.Name.Space, name, Namespace)
				}
			}
			stack = append(stack, name)
			text.Reset()
			if name == "被签名对象" && !inSigned {
				inSigned = true
				signedDepth = len(stack)
			}
			if !inSigned {
				continue
			}
			switch name {
			case "文档":
				depth := -1
				for _, n := range stack {
					if n == "被签名对象" {
						depth++
					}
				}
				s.Documents = append(s.Documents, ScannedDocument{Depth: depth})
				doc = &s.Documents[len(s.Documents)-1]
			case "编码":
				if doc != nil {
					doc.Encodings = append(doc.Encodings, ScannedEncoding{DeclaredSize: -1, ID: attr(t, "编码ID")})
					enc = &doc.Encodings[len(doc.Encodings)-1]
				}
			case "业务实体":
				s.Businesses = append(s.Businesses, Business{})
			case "机构人员实体":
				s.Agents = append(s.Agents, Agent{})
			}
		case xml.CharData:
			if text.Len() < 1<<20 {
				text.Write(t)
			}
		case xml.EndElement:
			name := t.Name.Local
			if inSigned && len(stack) > signedDepth {
				path := strings.Join(stack[signedDepth:], "/")
				val := strings.TrimSpace(text.String())
				if _, ok := s.Fields[path]; !ok && val != "" {
					s.Fields[path] = val
				}
				if n := len(s.Agents); n > 0 && len(stack) >= 2 && stack[len(stack)-2] == "机构人员实体" {
					a := &s.Agents[n-1]
					switch name {
					case "机构人员标识符":
						a.ID = val
					case "机构人员类型":
						a.Kind = val
					case "机构人员名称":
						a.Name = val
					case "组织机构代码":
						a.OrgCode = val
					case "个人职位":
						a.Position = val
					}
				}
				if n := len(s.Businesses); n > 0 && len(stack) >= 2 && stack[len(stack)-2] == "业务实体" {
					b := &s.Businesses[n-1]
					switch name {
					case "业务标识符":
						b.ID = val
					case "机构人员标识符":
						b.AgentID = val
					case "文件标识符":
						b.RecordNo = val
					case "业务状态":
						b.State = val
					case "业务行为":
						b.Action = val
					case "行为依据":
						b.Basis = val
					case "行为描述":
						b.Description = val
					}
				}
				if name == "附注" && path == s.EntityPath()+"附注" {
					s.Notes = append(s.Notes, val)
				}
				switch {
				case doc != nil && name == "文档标识符":
					doc.ID = val
				case doc != nil && name == "文档序号":
					doc.Seq = val
				case doc != nil && name == "文档主从声明":
					doc.Role = val
				case doc != nil && enc == nil && name == "题名":
					doc.Title = val
				case enc != nil && name == "计算机文件名":
					enc.FileName = val
				case enc != nil && name == "格式信息":
					enc.Format = val
				case enc != nil && name == "编码描述":
					enc.Description = val
				case enc != nil && name == "反编码关键字":
					enc.DecodeKey = val
				case enc != nil && name == "计算机文件大小":
					if n, err := strconv.ParseInt(val, 10, 64); err == nil {
						enc.DeclaredSize = n
					}
				case enc != nil && name == "编码数据":
					if dataIdx < len(lx.done) {
						d := lx.done[dataIdx]
						dataIdx++
						enc.Size, enc.err = d.n, d.err
						enc.SM3 = hex.EncodeToString(d.h.Sum(nil))
						enc.DataOffset, enc.DataLength = d.offset, d.length
					}
				case name == "编码":
					enc = nil
				case name == "文档":
					doc = nil
				}
			}
			if name == "被签名对象" && len(stack) == signedDepth {
				inSigned = false
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

const (
	entity        = "封装内容/文件实体块/文件实体/"
	amendedEntity = "修改封装内容/修订内容/文件实体块/文件实体/"
)

// EntityPath is where the record as it now stands lies under 被签名对象 (Fields' paths): the
// 文件实体 of an original package, or of an amended package's revision.
func (s *Scan) EntityPath() string {
	if s.Type == TypeAmended || s.Fields["封装包类型"] == TypeAmended {
		return amendedEntity
	}
	return entity
}

// mandatory lists the metadata DA/T 48 requires (GD-2-4), as paths under 被签名对象.
// The package's own elements are paths under 被签名对象; the record's, under EntityPath.
var mandatory = []struct {
	path, name string
	record     bool
}{
	{"封装包类型", "封装包类型", false},
	{"封装包类型描述", "封装包类型描述", false},
	{"封装包创建时间", "封装包创建时间", false},
	{"封装包创建单位", "封装包创建单位", false},
	{"聚合层次", "聚合层次", true},
	{"来源/立档单位名称", "立档单位名称", true},
	{"电子文件号", "电子文件号", true},
	{"档号/年度", "年度", true},
	{"档号/保管期限", "保管期限", true},
	{"内容描述/题名", "题名", true},
	{"内容描述/责任者", "责任者", true},
	{"内容描述/日期", "日期", true},
	{"内容描述/密级", "密级", true},
}

func (s *Scan) checkMetadata() {
	var missing []string
	ent := s.EntityPath()
	for _, m := range mandatory {
		path := m.path
		if m.record {
			path = ent + path
		}
		if s.Fields[path] == "" {
			missing = append(missing, m.name)
		}
	}
	if s.Type == TypeAmended && s.Fields["修改封装内容/修改标识符"] == "" {
		missing = append(missing, "修改标识符")
	}
	if s.Fields[ent+"档号/室编件号"] == "" && s.Fields[ent+"档号/馆编件号"] == "" {
		missing = append(missing, "室编件号|馆编件号")
	}
	if len(missing) > 0 {
		s.add(Finding{Code: CodeMandatory, Item: "必填元数据项", Status: Fail, Where: "被签名对象", Expected: "all mandatory DA/T 48 elements", Found: "missing: " + strings.Join(missing, ", ")})
	} else {
		s.add(Finding{Code: CodeMandatory, Item: "必填元数据项", Status: Pass, Detail: fmt.Sprintf("%d mandatory elements present", len(mandatory)+1)})
	}
	var incomplete []string
	if len(s.Businesses) == 0 {
		incomplete = append(incomplete, "no 业务实体")
	}
	if len(s.Agents) == 0 {
		incomplete = append(incomplete, "no 机构人员实体")
	}
	if len(s.Signatures) == 0 {
		incomplete = append(incomplete, "no 电子签名")
	}
	if len(incomplete) > 0 {
		s.add(Finding{Code: CodeMetaComplete, Item: "元数据完整", Status: Fail, Expected: "业务实体, 机构人员实体 and 电子签名 present", Found: strings.Join(incomplete, "; ")})
	} else {
		s.add(Finding{Code: CodeMetaComplete, Item: "元数据完整", Status: Pass, Detail: fmt.Sprintf("%d 业务实体, %d 机构人员实体, %d 电子签名", len(s.Businesses), len(s.Agents), len(s.Signatures))})
	}
}

var sm3InDescription = regexp.MustCompile(`SM3[:：]\s*([0-9a-fA-F]{64})`)

func (s *Scan) checkDocuments() {
	deepest, original := s.deepest()
	count := Finding{Code: CodeContentCount, Item: "内容数据数量", Status: Pass, Detail: fmt.Sprintf("%d documents numbered 1..%d", original, original)}
	if deepest > 0 {
		count.Detail += fmt.Sprintf("; %d revised in %d amendments", len(s.Documents)-original, deepest)
	}
	if original == 0 {
		count.Status, count.Expected, count.Found, count.Detail = Fail, "at least one 文档", "none", ""
	}
	last := map[int]int{} // depth → the last 文档序号 seen in it
	for i, d := range s.Documents {
		where := fmt.Sprintf("文档 %d", i+1)
		if deepest > 0 {
			where = "文档 " + d.ID
		}
		n, err := strconv.Atoi(d.Seq)
		switch {
		case d.Depth == deepest && (err != nil || n != last[d.Depth]+1):
			count.Status, count.Where, count.Expected, count.Found, count.Detail = Fail, where, "文档序号 "+strconv.Itoa(last[d.Depth]+1), "文档序号 "+d.Seq, "document numbering is not continuous"
		case d.Depth < deepest && (err != nil || n <= last[d.Depth] || n > original):
			count.Status, count.Where, count.Expected, count.Found, count.Detail = Fail, where, fmt.Sprintf("文档序号 of a document of the original package (1..%d), once each, in order", original), "文档序号 "+d.Seq, "a revision names a document the package does not hold"
		}
		if err == nil {
			last[d.Depth] = n
		}
		if len(d.Encodings) == 0 {
			count.Status, count.Where, count.Expected, count.Found, count.Detail = Fail, where, "at least one 编码", "none", ""
		}
		for j, e := range d.Encodings {
			w := fmt.Sprintf("%s 编码 %d (%s)", where, j+1, e.FileName)
			switch {
			case e.err != nil:
				s.add(Finding{Code: CodeContentAttrs, Item: "内容与电子属性一致", Status: Fail, Where: w, Expected: "valid base64", Found: e.err.Error()})
			case e.DeclaredSize != e.Size:
				s.add(Finding{Code: CodeContentAttrs, Item: "内容与电子属性一致", Status: Fail, Where: w, Expected: fmt.Sprintf("计算机文件大小 %d", e.DeclaredSize), Found: fmt.Sprintf("%d bytes", e.Size)})
			default:
				f := Finding{Code: CodeContentAttrs, Item: "内容与电子属性一致", Status: Pass, Where: w, Detail: fmt.Sprintf("%d bytes", e.Size)}
				if m := sm3InDescription.FindStringSubmatch(e.Description); m != nil {
					if !strings.EqualFold(m[1], e.SM3) {
						f.Status, f.Expected, f.Found, f.Detail = Fail, "SM3 "+strings.ToLower(m[1]), "SM3 "+e.SM3, "document content differs from its recorded digest"
					} else {
						f.Detail += ", SM3 matches"
					}
				}
				s.add(f)
			}
		}
	}
	s.add(count)
}

// readSignatureBlocks parses 电子签名块 and 锁定签名 from the end of the package.
func readSignatureBlocks(r io.ReaderAt, size int64) ([]Signature, *Signature, error) {
	n := min(size, sigTail)
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read package tail: %w", err)
	}
	var sigs []Signature
	var lock *Signature
	if blk := between(tail, "<电子签名块", "</电子签名块>"); blk != nil {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(blk); err == nil && doc.Root() != nil {
			for _, el := range doc.Root().SelectElements("电子签名") {
				sigs = append(sigs, parseSignature(el))
			}
		}
	}
	if blk := between(tail, "<锁定签名", "</锁定签名>"); blk != nil {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(blk); err == nil && doc.Root() != nil {
			l := parseSignature(doc.Root())
			lock = &l
		}
	}
	return sigs, lock, nil
}

func between(b []byte, open, close string) []byte {
	i := bytes.LastIndex(b, []byte(open))
	if i < 0 {
		return nil
	}
	j := bytes.Index(b[i:], []byte(close))
	if j < 0 {
		return nil
	}
	return b[i : i+j+len(close)]
}

func parseSignature(el *etree.Element) Signature {
	txt := func(name string) string {
		if c := el.SelectElement(name); c != nil {
			return strings.TrimSpace(c.Text())
		}
		return ""
	}
	s := Signature{ID: txt("签名标识符"), LockedID: txt("被锁定签名标识符"), Rule: txt("签名规则"), Signer: txt("签名人"), Algorithm: txt("签名算法标识")}
	s.Value, _ = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(txt("签名结果")), ""))
	if t := txt("签名时间"); t != "" {
		s.Time, _ = ParseTime(t)
	}
	if blk := el.SelectElement("证书块"); blk != nil {
		for _, c := range blk.SelectElements("证书") {
			if der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), "")); err == nil {
				s.Certs = append(s.Certs, der)
			}
		}
	}
	return s
}

// CanonicalElement returns the C14N 1.0 (without comments) form of the first element with
// the given local name (or whose ancestors' names end in the slash-separated path, such as
// "原封装包/被签名对象"), for packages whose file bytes are not canonical. It parses the
// whole package in memory: callers bound the size.
func CanonicalElement(r io.Reader, local string) ([]byte, error) {
	doc := etree.NewDocument()
	if _, err := doc.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("parse package: %w", err)
	}
	var path []*etree.Element
	var find func(el *etree.Element) bool
	want := strings.Split(local, "/") // the element's name, or a path of names ending in it
	find = func(el *etree.Element) bool {
		path = append(path, el)
		if el.Tag == want[len(want)-1] && len(path) >= len(want) {
			match := true
			for i, name := range want {
				if path[len(path)-len(want)+i].Tag != name {
					match = false
				}
			}
			if match {
				return true
			}
		}
		for _, c := range el.ChildElements() {
			if find(c) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if doc.Root() == nil || !find(doc.Root()) {
		return nil, fmt.Errorf("no %s element", local)
	}
	ctx := etreeutils.NewDefaultNSContext()
	for _, anc := range path[:len(path)-1] {
		var err error
		if ctx, err = ctx.SubContext(anc); err != nil {
			return nil, fmt.Errorf("namespace context: %w", err)
		}
	}
	det, err := etreeutils.NSDetatch(ctx, path[len(path)-1])
	if err != nil {
		return nil, fmt.Errorf("detach %s: %w", local, err)
	}
	out, err := dsig.MakeC14N10RecCanonicalizer().Canonicalize(det)
	if err != nil {
		return nil, fmt.Errorf("canonicalise %s: %w", local, err)
	}
	return out, nil
}

// ParseTime reads an xs:dateTime as packages write it (China Standard Time when no zone).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, cst); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an xs:dateTime: %q", s)
}
