package eep

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/dangan-archive/dangan/formats"
)

var (
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 128<<10) }}
	b64Bufs = sync.Pool{New: func() any { return &b64Buf{in: make([]byte, 57*1024), out: make([]byte, 0, 77*1024)} }}
)

type b64Buf struct{ in, out []byte }

// Hooks connect the writer to the signer.
type Hooks struct {
	// Signed receives exactly the bytes of 被签名对象, start tag to end tag, as written.
	Signed io.Writer
	// Sign is called once 被签名对象 is complete and returns the 电子签名 entries.
	Sign func() ([]Signature, error)
	// Locked receives exactly the bytes of 电子签名块, start tag to end tag.
	Locked io.Writer
	// Lock is called once 电子签名块 is complete and returns the 锁定签名.
	Lock func() (*Signature, error)
}

// EncodingPlace says where one 编码数据's base64 text lies in the written package.
type EncodingPlace struct {
	Doc, Enc   int // 1-based
	ID         string
	DataOffset int64
	DataLength int64
	Size       int64 // decoded bytes, as read from the encoding's reader
}

// Result describes a written package.
type Result struct {
	Size       int64
	Encodings  []EncodingPlace
	Signatures []Signature
	Lock       *Signature
}

// ErrSizeMismatch is returned when an encoding's reader yields another size than declared.
var ErrSizeMismatch = errors.New("document size differs from the declared size")

// xw writes canonical XML and counts bytes; capture writers see a chosen span.
type xw struct {
	bw      *bufio.Writer
	n       int64
	capture io.Writer
	err     error
}

func (x *xw) write(s string) {
	if x.err != nil {
		return
	}
	if x.capture != nil {
		if _, err := io.WriteString(x.capture, s); err != nil {
			x.err = fmt.Errorf("hash signed bytes: %w", err)
			return
		}
	}
	n, err := x.bw.WriteString(s)
	x.n += int64(n)
	if err != nil {
		x.err = err
	}
}

func (x *xw) Write(p []byte) (int, error) {
	if x.err != nil {
		return 0, x.err
	}
	if x.capture != nil {
		if _, err := x.capture.Write(p); err != nil {
			x.err = fmt.Errorf("hash signed bytes: %w", err)
			return 0, x.err
		}
	}
	n, err := x.bw.Write(p)
	x.n += int64(n)
	if err != nil {
		x.err = err
	}
	return n, err
}

func (x *xw) close(name string) { x.write("</" + name + ">\n") }
func (x *xw) openAttr(name, attr, val string) {
	x.write("<" + name + " " + attr + `="` + formats.EscapeAttr(val) + `">`)
}

// elem writes <name>text</name>; C14N writes empty elements as a start/end pair.
func (x *xw) elem(name, text string) {
	x.write("<" + name + ">" + formats.EscapeText(text) + "</" + name + ">\n")
}

func (x *xw) opt(name, text string) {
	if text != "" {
		x.elem(name, text)
	}
}

// xmlTime formats an xs:dateTime in China Standard Time, seconds precision.
func xmlTime(t time.Time) string {
	return t.In(cst).Format("2006-01-02T15:04:05-07:00")
}

var cst = time.FixedZone("CST", 8*3600)

// CST is China Standard Time (UTC+8), the zone dangan writes times in.
func CST() *time.Location { return cst }

// Write streams pkg as an EEP to w, calling the hooks to sign. Every text value must be
// valid XML character data (formats.ValidXMLText); the caller validates metadata first.
func Write(w io.Writer, pkg *Package, hooks Hooks) (*Result, error) {
	if hooks.Signed == nil || hooks.Sign == nil || hooks.Locked == nil || hooks.Lock == nil {
		return nil, errors.New("eep: all signing hooks are required")
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer writers.Put(bw)
	x := &xw{bw: bw}
	res := &Result{}
	x.head(hooks, TypeOriginal, TypeOriginalDesc, pkg.Created, pkg.Creator)
	x.write("<封装内容>\n")
	if err := writeEntity(x, 0, &pkg.Entity, res); err != nil {
		return nil, err
	}
	writeBusinesses(x, pkg.Businesses)
	writeAgents(x, pkg.Agents)
	x.write("</封装内容>\n")
	x.write("</被签名对象>")
	x.capture = nil
	x.write("\n")
	if x.err != nil {
		return nil, fmt.Errorf("write EEP: %w", x.err)
	}
	return res, finish(x, res, hooks)
}

// head writes the root and the package's own elements, and opens 被签名对象 with its
// bytes going to the signing hook from its start tag on.
func (x *xw) head(hooks Hooks, typ, desc string, created time.Time, creator string) {
	x.write(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.write(`<电子文件封装包 xmlns="` + Namespace + `">` + "\n")
	x.elem("封装包格式描述", FormatDescription)
	x.elem("版本", Version)
	x.capture = hooks.Signed
	x.write(`<被签名对象 xmlns="` + Namespace + `" eep版本="` + Version + `">` + "\n")
	x.elem("封装包类型", typ)
	x.elem("封装包类型描述", desc)
	x.elem("封装包创建时间", xmlTime(created))
	x.elem("封装包创建单位", creator)
}

// finish writes the signature block and the lock signature after 被签名对象.
func finish(x *xw, res *Result, hooks Hooks) error {
	sigs, err := hooks.Sign()
	if err != nil {
		return fmt.Errorf("sign EEP: %w", err)
	}
	res.Signatures = sigs
	x.capture = hooks.Locked
	x.write(`<电子签名块 xmlns="` + Namespace + `">` + "\n")
	for i := range sigs {
		writeSignature(x, "电子签名", &sigs[i])
	}
	x.write("</电子签名块>")
	x.capture = nil
	x.write("\n")
	if x.err != nil {
		return fmt.Errorf("write EEP: %w", x.err)
	}
	lock, err := hooks.Lock()
	if err != nil {
		return fmt.Errorf("lock EEP: %w", err)
	}
	res.Lock = lock
	writeSignature(x, "锁定签名", lock)
	x.write("</电子文件封装包>\n")
	if x.err != nil {
		return fmt.Errorf("write EEP: %w", x.err)
	}
	if err := x.bw.Flush(); err != nil {
		return fmt.Errorf("write EEP: %w", err)
	}
	res.Size = x.n
	return nil
}

func writeEntity(x *xw, layer int, e *Entity, res *Result) error {
	x.write("<文件实体块>\n<文件实体>\n")
	x.elem("聚合层次", "文件")
	x.write("<来源>\n")
	x.opt("档案馆名称", e.ArchiveName)
	x.opt("档案馆代码", e.ArchiveCode)
	x.opt("全宗名称", e.FondsName)
	x.elem("立档单位名称", e.Creator)
	x.close("来源")
	x.elem("电子文件号", e.RecordNo)
	x.write("<档号>\n")
	x.elem("全宗号", e.Fonds)
	x.elem("年度", strconv.Itoa(e.Year))
	x.elem("保管期限", e.Retention)
	x.elem("室编件号", fmt.Sprintf("%04d", e.ItemNo))
	x.close("档号")
	x.write("<内容描述>\n")
	x.elem("题名", e.Title)
	x.opt("摘要", e.Abstract)
	x.opt("文件编号", e.DocNo)
	x.elem("责任者", e.Responsible)
	x.elem("日期", e.Date)
	x.opt("文种", e.DocKind)
	x.elem("密级", e.Classification)
	x.close("内容描述")
	x.write("<形式特征>\n")
	kind := "单件"
	if len(e.Documents) > 1 {
		kind = "组合文件"
	}
	x.elem("文件组合类型", kind)
	x.opt("语种", e.Language)
	x.close("形式特征")
	x.elem("存储位置", e.Location)
	x.write("<权限管理>\n")
	for _, g := range e.Grants {
		x.write("<授权>\n")
		x.elem("授权对象", g.To)
		x.elem("授权行为", g.Action)
		x.close("授权")
	}
	x.close("权限管理")
	for _, s := range e.Systems {
		x.elem("信息系统描述", s)
	}
	for _, n := range e.Notes {
		x.elem("附注", n)
	}
	x.write("<文件数据>\n")
	for i := range e.Documents {
		n := e.Documents[i].N
		if n == 0 {
			n = i + 1
		}
		if err := writeDocument(x, layer, n, &e.Documents[i], res); err != nil {
			return err
		}
	}
	x.close("文件数据")
	x.close("文件实体")
	x.close("文件实体块")
	return x.err
}

func writeDocument(x *xw, layer, n int, d *Document, res *Result) error {
	docID := fmt.Sprintf("修改%d-文档%d", layer, n)
	x.write("<文档>\n")
	x.elem("文档标识符", docID)
	x.elem("文档序号", strconv.Itoa(n))
	role := "附属文档"
	if d.Main {
		role = "主文档"
	}
	x.elem("文档主从声明", role)
	x.opt("题名", d.Title)
	dataID := docID + "-文档数据1"
	x.openAttr("文档数据", "文档数据ID", dataID)
	x.write("\n")
	for j := range d.Encodings {
		e := &d.Encodings[j]
		encID := fmt.Sprintf("%s-编码%d", dataID, j+1)
		x.openAttr("编码", "编码ID", encID)
		x.write("\n<电子属性>\n")
		x.opt("格式信息", e.FormatInfo)
		x.elem("计算机文件名", e.FileName)
		x.elem("计算机文件大小", strconv.FormatInt(e.Size, 10))
		x.opt("文档创建程序", e.CreatorApp)
		x.close("电子属性")
		x.elem("编码描述", e.Description)
		x.elem("反编码关键字", e.DecodeKey)
		x.openAttr("编码数据", "编码数据ID", encID+"-编码数据1")
		start := x.n
		size, err := writeBase64(x, e)
		if err != nil {
			return fmt.Errorf("document %d encoding %d (%s): %w", n, j+1, e.FileName, err)
		}
		res.Encodings = append(res.Encodings, EncodingPlace{Doc: n, Enc: j + 1, ID: encID, DataOffset: start, DataLength: x.n - start, Size: size})
		x.close("编码数据")
		x.close("编码")
	}
	x.close("文档数据")
	x.close("文档")
	return x.err
}

func writeBase64(x *xw, e *Encoding) (int64, error) {
	rc, err := e.Open()
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	// 1024 lines at a time: 57 input bytes make one 76-character line; lines are separated
	// by LF (RFC 2045 line length; LF because an XML parser turns CR LF into LF, and the
	// signed bytes must survive a parse).
	bufs := b64Bufs.Get().(*b64Buf)
	defer b64Bufs.Put(bufs)
	in, out := bufs.in, bufs.out[:0]
	var n int64
	first := true
	for {
		m, err := io.ReadFull(rc, in)
		if m > 0 {
			n += int64(m)
			out = out[:0]
			for off := 0; off < m; off += 57 {
				if !first {
					out = append(out, '\n')
				}
				first = false
				out = base64.StdEncoding.AppendEncode(out, in[off:min(off+57, m)])
			}
			if _, werr := x.Write(out); werr != nil {
				return n, werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("read: %w", err)
		}
	}
	if n != e.Size {
		return n, fmt.Errorf("%w: declared %d, read %d", ErrSizeMismatch, e.Size, n)
	}
	return n, x.err
}

func writeBusinesses(x *xw, bs []Business) {
	x.write("<业务实体块>\n")
	for _, b := range bs {
		x.write("<业务实体>\n")
		x.elem("业务标识符", b.ID)
		x.elem("机构人员标识符", b.AgentID)
		x.elem("文件标识符", b.RecordNo)
		x.elem("业务状态", b.State)
		x.elem("业务行为", b.Action)
		x.elem("行为时间", xmlTime(b.Time))
		x.opt("行为依据", b.Basis)
		x.opt("行为描述", b.Description)
		x.close("业务实体")
	}
	x.close("业务实体块")
}

func writeAgents(x *xw, as []Agent) {
	x.write("<机构人员实体块>\n")
	for _, a := range as {
		x.write("<机构人员实体>\n")
		x.elem("机构人员标识符", a.ID)
		x.opt("机构人员类型", a.Kind)
		x.elem("机构人员名称", a.Name)
		x.opt("组织机构代码", a.OrgCode)
		x.opt("个人职位", a.Position)
		x.close("机构人员实体")
	}
	x.close("机构人员实体块")
}

func writeSignature(x *xw, tag string, s *Signature) {
	x.write("<" + tag + ">\n")
	if s.LockedID != "" {
		x.elem("被锁定签名标识符", s.LockedID)
	} else {
		x.elem("签名标识符", s.ID)
	}
	x.elem("签名规则", s.Rule)
	x.elem("签名时间", xmlTime(s.Time))
	x.opt("签名人", s.Signer)
	x.elem("签名结果", base64.StdEncoding.EncodeToString(s.Value))
	x.write("<证书块>\n")
	for _, c := range s.Certs {
		x.elem("证书", base64.StdEncoding.EncodeToString(c))
	}
	x.close("证书块")
	x.elem("签名算法标识", s.Algorithm)
	x.close(tag)
}
