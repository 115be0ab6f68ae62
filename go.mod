module github.com/dangan-archive/dangan

go 1.26

require (
	github.com/emmansun/gmsm v0.44.1
	go.etcd.io/bbolt v1.4.3
)

require (
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
