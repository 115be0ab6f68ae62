// Package eep writes and reads DA/T 48-2009 electronic-record encapsulation packages.
//
// The writer streams canonical XML (C14N 1.0 without comments): every document is
// base64-encoded straight from its reader, and the exact bytes of 被签名对象 go to a hook as
// they are written, so a package of any size is signed without being held in memory and a
// verifier can hash the bytes between the tags. The reader (Read) streams a package once,
// returning structured findings keyed by DA/T 70 codes.
//
//	res, err := eep.Write(w, pkg, eep.Hooks{Signed: h, Sign: signFn, Lock: lockFn})
//	scan, err := eep.Read(file, size, eep.ScanOptions{NewHash: sm3.New, ...})
//
// This package does no cryptography itself: hashes and signatures come through hooks, so
// formats does not depend on signing.
package eep

import (
	"io"
	"time"
)

// Namespace of DA/T 48-2009.
const Namespace = "http://www.saac.gov.cn/standards/ERM/encapsulation"

// Fixed texts of the standard.
const (
	FormatDescription = "本EEP根据中华人民共和国档案行业标准DA/T 48-2009《基于XML的电子文件封装规范》生成"
	Version           = "2009"
	TypeOriginal      = "原始型"
	TypeOriginalDesc  = "本封装包包含电子文件数据及其元数据，原始封装，未经修改"
	TypeAmended       = "修改型"
	TypeAmendedDesc   = "本封装包包含电子文件数据及其元数据，系修改封装，在保留原封装包的基础上，添加了修改层"
)

// Package is what goes into an original (原始型) EEP.
type Package struct {
	Created    time.Time
	Creator    string // 封装包创建单位
	Entity     Entity
	Businesses []Business // 业务实体, at least one
	Agents     []Agent    // 机构人员实体, at least one
}

// Entity is the 文件实体 (aggregation level 文件: one case).
type Entity struct {
	ArchiveName    string // 来源/档案馆名称 (optional)
	ArchiveCode    string // 来源/档案馆代码 (optional)
	FondsName      string // 来源/全宗名称 (optional)
	Creator        string // 来源/立档单位名称
	RecordNo       string // 电子文件号
	Fonds          string // 档号/全宗号
	Year           int    // 档号/年度
	Retention      string // 档号/保管期限
	ItemNo         int    // 档号/室编件号
	Title          string // 内容描述/题名
	Abstract       string // 内容描述/摘要
	DocNo          string // 内容描述/文件编号
	Responsible    string // 内容描述/责任者
	Date           string // 内容描述/日期 (YYYY-MM-DD)
	DocKind        string // 内容描述/文种
	Classification string // 内容描述/密级
	Language       string // 形式特征/语种
	Location       string // 存储位置
	Grants         []Grant
	Systems        []string // 信息系统描述
	Notes          []string // 附注
	Documents      []Document
}

// Grant is one 授权 under 权限管理.
type Grant struct {
	To     string // 授权对象
	Action string // 授权行为
}

// Document is one 文档 with one 文档数据 holding its encodings.
type Document struct {
	// N is its 文档序号: 0 numbers documents by their place. A revision (修订内容) numbers
	// each document it revises as the package it wraps does.
	N         int
	Main      bool
	Title     string
	Encodings []Encoding // the archival rendition first, then the original when it differs
}

// Encoding is one 编码: a file and its electronic attributes.
type Encoding struct {
	FileName    string // 计算机文件名
	Size        int64  // 计算机文件大小 (bytes)
	FormatInfo  string // 格式信息
	CreatorApp  string // 文档创建程序
	Description string // 编码描述
	DecodeKey   string // 反编码关键字 (restores the file extension)
	Open        func() (io.ReadCloser, error)
}

// Business is a 业务实体: one step of the case, or the archiving itself.
type Business struct {
	ID          string // 业务标识符
	AgentID     string // 机构人员标识符
	RecordNo    string // 文件标识符
	State       string // 业务状态: 历史行为 | 计划任务
	Action      string // 业务行为
	Time        time.Time
	Basis       string // 行为依据
	Description string // 行为描述
}

// Agent is a 机构人员实体.
type Agent struct {
	ID       string // 机构人员标识符
	Kind     string // 单位 | 内设机构 | 个人
	Name     string
	OrgCode  string // 组织机构代码
	Position string // 个人职位
}

// Signature is one 电子签名 (or the 锁定签名 with LockedID set).
type Signature struct {
	ID        string // 签名标识符
	LockedID  string // 被锁定签名标识符, for the lock signature
	Rule      string // 签名规则
	Time      time.Time
	Signer    string
	Value     []byte   // DER signature
	Certs     [][]byte // DER certificates, signer first
	Algorithm string   // 签名算法标识 (OID)
}
