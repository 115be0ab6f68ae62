package eep

import (
	"bytes"
	"testing"

	"github.com/emmansun/gmsm/sm3"
)

// FuzzRead feeds arbitrary bytes to the package reader, which the public verifier exposes
// to anyone: it must return findings or an error, never panic or hang. The seeds run as
// part of go test; `go test -fuzz FuzzRead ./formats/eep` explores further.
func FuzzRead(f *testing.F) {
	var t testing.T
	file, _, _ := writeTest(&t, []doc{{"a.pdf", []byte("%PDF-1.7 x")}}, "题名")
	f.Add(file)
	f.Add([]byte(""))
	f.Add([]byte("<电子文件封装包"))
	f.Add([]byte(`<?xml version="1.0"?><电子文件封装包 xmlns="` + Namespace + `"><被签名对象><编码数据 编码数据ID="x">!!!</编码数据></被签名对象></电子文件封装包>`))
	f.Add(bytes.Replace(file, []byte("</被签名对象>"), nil, 1))
	f.Add(bytes.Replace(file, []byte("<编码数据 "), []byte("<!--<编码数据 "), 1))
	f.Add(file[:len(file)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Read(bytes.NewReader(b), int64(len(b)), ScanOptions{NewHash: sm3.New})
		if err == nil && s == nil {
			t.Fatal("no scan and no error")
		}
	})
}
