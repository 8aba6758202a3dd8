package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/esv2/esv2/internal/pgtest"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// TestMain runs the tests, or, in a process TestReadModelSurvivesKills
// started, the read model's consumer.
func TestMain(m *testing.M) {
	if os.Getenv(envConsumerDB) != "" {
		os.Exit(consumerMain())
	}
	goleak.VerifyTestMain(m)
}

// TestRun runs the example on an in-memory store and checks its whole
// output: the story must read the same on every run.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := mainErr(t.Context(), &out, config{}); err != nil {
		t.Fatalf("run: %v\noutput so far:\n%s", err, out.String())
	}
	if diff := cmp.Diff(wantOutput, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	want := map[string]int64{"alice": 90, "bob": 80, "carol": 115}
	if diff := cmp.Diff(want, balances(t, out.String())); diff != "" {
		t.Errorf("final balances (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, readModelBalances(t, out.String())); diff != "" {
		t.Errorf("read model's balances (-want +got):\n%s", diff)
	}
}

// TestRunOnFile runs the example on a SQLite file, then again on the same
// file, which it must refuse rather than mix two runs.
func TestRunOnFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	var out bytes.Buffer
	if err := mainErr(t.Context(), &out, config{db: path}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := map[string]int64{"alice": 90, "bob": 80, "carol": 115}
	if diff := cmp.Diff(want, balances(t, out.String())); diff != "" {
		t.Errorf("final balances (-want +got):\n%s", diff)
	}
	// The read model and its checkpoint stay in the file, for another
	// process to read with database/sql.
	wantRows := []balance{{"account-alice", 90, 7}, {"account-bob", 80, 3}, {"account-carol", 115, 4}}
	if diff := cmp.Diff(wantRows, tableOf(t, path)); diff != "" {
		t.Errorf("balances table in the file (-want +got):\n%s", diff)
	}
	err := mainErr(t.Context(), &bytes.Buffer{}, config{db: path})
	if err == nil || !strings.Contains(err.Error(), "needs a new database") {
		t.Errorf("second run on the same file: err = %v, want a refusal", err)
	}
}

// TestRunOnPostgres runs the example with -dsn on a fresh schema, and
// checks that its story is the same as on SQLite.
func TestRunOnPostgres(t *testing.T) {
	schema := pgtest.FreshSchema(t, "esv2_bank_test_")
	dsn := pgtest.DSN(t)
	var out bytes.Buffer
	if err := mainErr(t.Context(), &out, config{dsn: dsn, schema: schema}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := strings.Replace(wantOutput, "on SQLite in memory.", "on PostgreSQL.", 1)
	cut := strings.Index(want, "\nRead model:")
	if cut < 0 {
		t.Fatal("wantOutput has no read model")
	}
	want = want[:cut] +
		"\n(The read model of the SQLite run, a balances table kept by a subscription, is not shown on PostgreSQL.)\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

var balanceLine = regexp.MustCompile(`(?m)^  (alice|bob|carol) +(-?\d+)  \(version \d+\)$`)

// balances parses the "Final balances" lines.
func balances(t *testing.T, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	_, final, ok := strings.Cut(out, "Final balances:\n")
	if !ok {
		t.Fatalf("no final balances in output:\n%s", out)
	}
	for _, m := range balanceLine.FindAllStringSubmatch(final, -1) {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got[m[1]] = n
	}
	return got
}

var readModelLine = regexp.MustCompile(`(?m)^  account-(alice|bob|carol) +(-?\d+)  \(version \d+\)$`)

// readModelBalances parses the lines of the read model's table.
func readModelBalances(t *testing.T, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	_, table, ok := strings.Cut(out, "\nRead model:")
	if !ok {
		t.Fatalf("no read model in output:\n%s", out)
	}
	for _, m := range readModelLine.FindAllStringSubmatch(table, -1) {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got[m[1]] = n
	}
	return got
}

const wantOutput = `esv2 bank example on SQLite in memory.
A watcher follows all streams ($all) and prints each event as it is stored:
  event <global position> <stream> v<version> <type> <data>

1. Open three accounts.
  event  1 account-alice v1 account.opened            {Owner:alice}
  event  2 account-bob   v1 account.opened            {Owner:bob}
  event  3 account-carol v1 account.opened            {Owner:carol}

2. Deposit: alice 100, bob 50, carol 100.
  event  4 account-alice v2 account.deposited         {Amount:100}
  event  5 account-bob   v2 account.deposited         {Amount:50}
  event  6 account-carol v2 account.deposited         {Amount:100}

3. Bob tries to withdraw 80 with 50 in his account.
  refused by the decide function (aggregate: update "account-bob": balance 50, asked 80: insufficient funds); nothing stored.

4. Two tellers, in two instances of the service, serve carol at once: teller 1 deposits 40,
   teller 2 withdraws 25.
  event  7 account-carol v3 account.deposited         {Amount:40}
  event  8 account-carol v4 account.withdrawn         {Amount:25}
  teller 1 decided once and saved first.
  teller 2 decided 2 times: its first save hit a concurrency conflict (teller 1 had
  saved since it loaded), so Update loaded the account again, decided again, and won.

5. Transfer 30 from alice to bob (command transfer-1), then retry it as a client would after a timeout.
  event  9 account-alice v3 account.transfer-sent     {To:account-bob Amount:30}
  event 10 account-bob   v3 account.transfer-received {From:account-alice Amount:30}
  attempt 1: alice 70 (v3), bob 80 (v3)
  attempt 2: alice 70 (v3), bob 80 (v3)
  the retry stored nothing: the command was already applied.

6. Snapshots: when a save takes an account past a multiple of 5 events, its state is saved too.
   Alice makes 4 deposits of 5.
  event 11 account-alice v4 account.deposited         {Amount:5}
  event 12 account-alice v5 account.deposited         {Amount:5}
  event 13 account-alice v6 account.deposited         {Amount:5}
  event 14 account-alice v7 account.deposited         {Amount:5}
  the latest snapshot of account-alice is at version 5 (schema account-v1);
  loading alice starts from it and folds 2 more event(s): version 7, balance 90.

Final balances:
  alice    90  (version 7)
  bob      80  (version 3)
  carol   115  (version 4)
14 events stored in all.

Read model: subscription bank-balances keeps the table balances in the store's own database,
writing it in the transaction that moves its checkpoint. Waited for position 14; the table:
  account-alice   90  (version 7)
  account-bob     80  (version 3)
  account-carol  115  (version 4)
subscription bank-balances: checkpoint at position 14, lag 0.
`
