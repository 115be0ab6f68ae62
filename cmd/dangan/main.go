// Command dangan runs and operates a dangan archive.
//
//	dangan serve  --data DIR --addr HOST:PORT   run the service (creates a development PKI on first start)
//	dangan init   --data DIR                    create the data directory, PKI and admin token
//	dangan token create --data DIR --role R [--org USCC]
//	dangan index rebuild --data DIR             rebuild the index from the object store alone
//	dangan ingest CASEDIR --server URL --token T
//	dangan verify FILE.eep [--roots ROOTS.pem] [--evidence FILE] [--json]
//	dangan schedule | transfer | disposal | audit --server URL --token T   the records' life
//	dangan log verify --data DIR                replay the event log from storage and check it
//	dangan bench ingest | log | audit           throughput against the machine's limits
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

const usage = `dangan — county government e-records archive

usage:
  dangan serve  [--data DIR] [--addr HOST:PORT] [--tsa-url URL] [--county-url URL --county-token-file F] …   (serve -h: every flag)
  dangan init   [--data DIR]
  dangan token create [--data DIR] --role department|issuer|archive|auditor|admin [--org USCC] [--note NAME]
  dangan formats [--format-policy FILE] [--json]   the format policy, and which converters are installed
  dangan index rebuild [--data DIR] [--s3-endpoint ...]   rebuild the index from the object store
  dangan migrate --plan [--data DIR] [--format-policy FILE] [--json]   what a changed policy or converter would make differently
  dangan migrate --run [--data DIR] [--format-policy FILE] [--rate N] [--limit N] [--by NAME]   give those packages an amended (修改型) current form
  dangan backup  [--data DIR] (--to DIR | --to-s3-endpoint HOST:PORT [--to-s3-bucket B])
  dangan restore --data NEWDIR (--from DIR | --from-s3-endpoint HOST:PORT [--from-s3-bucket B])
  dangan ingest CASEDIR --server URL --token TOKEN
  dangan verify FILE.eep [--roots ROOTS.pem] [--evidence FILE] [--json]   (also a signed destruction register)
  dangan schedule [--server URL --token T] [--at DATE] [--horizon-days N] [--json]   what is due
  dangan transfer create (--due | --packages ID,…) [--department USCC] | status BATCH | list   to the county archive
  dangan disposal candidates | decide … | approve … | register [--pdf] --out FILE   appraisal and destruction
  dangan audit [--all=false] [--mbps N] [--status]   a 四性 audit run on the server, with progress
  dangan log verify [--data DIR] [--s3-endpoint ...] [--roots ROOTS.pem]   replay and check the event log
  dangan bench ingest [--cases N] [--clients N] [--large-mb M]
  dangan bench log [--seconds S] [--clients N]
  dangan bench audit [--packages N] [--size-kb K] [--throttle-mbps M]
  dangan bench verify [--seconds S] [--clients N]
  dangan bench convert [--docs N] [--workers N]

Environment: DANGAN_KEY_PASSWORD decrypts the keys in DIR/pki.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "formats":
		err = cmdFormats(args)
	case "serve":
		err = cmdServe(args)
	case "init":
		err = cmdInit(args)
	case "token":
		err = cmdToken(args)
	case "index":
		err = cmdIndex(args)
	case "migrate":
		err = cmdMigrate(args)
	case "backup":
		err = cmdBackup(args)
	case "restore":
		err = cmdRestore(args)
	case "ingest":
		err = cmdIngest(args)
	case "verify":
		os.Exit(cmdVerify(args))
	case "bench":
		err = cmdBench(args)
	case "log":
		err = cmdLog(args)
	case "schedule":
		err = cmdSchedule(args)
	case "transfer":
		err = cmdTransfer(args)
	case "disposal":
		err = cmdDisposal(args)
	case "audit":
		err = cmdAudit(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "dangan: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangan:", err)
		if strings.HasPrefix(err.Error(), "usage") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func logger(format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
