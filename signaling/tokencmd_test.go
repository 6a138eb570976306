package signaling

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

const tokCmdSecret = "command-line-secret-0123456789ab"

// newTokenCobra builds the cobra command the way Caddy's CLI does, from
// the registered command, with its output captured.
func newTokenCobra(t *testing.T, args ...string) (*cobra.Command, *bytes.Buffer) {
	t.Helper()
	reg, ok := caddycmd.Commands()[TokenCommand]
	if !ok {
		t.Fatalf("command %q is not registered", TokenCommand)
	}
	cmd := &cobra.Command{Use: reg.Name, SilenceUsage: true}
	reg.CobraFunc(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(new(bytes.Buffer)) // cobra's usage text is noise here
	cmd.SetArgs(args)
	return cmd, &out
}

// runTokenCobra executes the command and returns stdout and the error.
func runTokenCobra(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd, out := newTokenCobra(t, args...)
	err := cmd.Execute()
	return out.String(), err
}

// verifyPrinted checks the command printed exactly one token and a
// newline, valid for room standup under secret, and returns its claims.
func verifyPrinted(t *testing.T, out, secret string, at time.Time) *TokenClaims {
	t.Helper()
	tok, ok := strings.CutSuffix(out, "\n")
	if !ok || tok == "" || strings.ContainsAny(tok, "\n ") {
		t.Fatalf("output is not one token and a newline: %d bytes", len(out))
	}
	c, err := NewTokenVerifier([][]byte{[]byte(secret)}).Verify(tok, "standup", at)
	if err != nil {
		t.Fatalf("printed token refused: %v", err)
	}
	return c
}

func TestTokenCommandLiteralSecret(t *testing.T) {
	before := time.Now()
	out, err := runTokenCobra(t, "--secret", tokCmdSecret, "--room", "standup", "--sub", "alice", "--name", "Alice", "--ttl", "30m")
	if err != nil {
		t.Fatal(err)
	}
	c := verifyPrinted(t, out, tokCmdSecret, time.Now())
	if c.Subject != "alice" || c.Name != "Alice" {
		t.Fatalf("claims = %+v", c)
	}
	// exp has whole seconds: allow the truncation.
	exp := c.ExpiresAt.Time
	if exp.Before(before.Add(30*time.Minute).Truncate(time.Second)) || exp.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("exp %v is not 30m after the run (%v)", exp, before)
	}
}

func TestTokenCommandExactExpiry(t *testing.T) {
	cmd, _ := newTokenCobra(t)
	if err := cmd.Flags().Parse([]string{"--secret", tokCmdSecret, "--room", "standup", "--sub", "alice"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code, err := runTokenCommand(caddycmd.Flags{FlagSet: cmd.Flags()}, &out, tokNow); err != nil || code != 0 {
		t.Fatalf("code %d, err %v", code, err)
	}
	c := verifyPrinted(t, out.String(), tokCmdSecret, tokNow)
	if !c.ExpiresAt.Equal(tokNow.Add(defaultTokenTTL)) || c.Name != "" {
		t.Fatalf("default ttl: claims = %+v", c)
	}
}

func TestTokenCommandEnvPlaceholder(t *testing.T) {
	t.Setenv("CADDYWEBRTC_TEST_TOKEN_SECRET", tokCmdSecret)
	out, err := runTokenCobra(t, "--secret", "{env.CADDYWEBRTC_TEST_TOKEN_SECRET}", "--room", "standup", "--sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	verifyPrinted(t, out, tokCmdSecret, time.Now())
}

func TestTokenCommandFilePlaceholder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	// A trailing newline, as editors and `echo` leave it, is not part of
	// the secret.
	if err := os.WriteFile(path, []byte(tokCmdSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runTokenCobra(t, "--secret", "{file."+path+"}", "--room", "standup", "--sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	verifyPrinted(t, out, tokCmdSecret, time.Now())
}

func TestTokenCommandErrors(t *testing.T) {
	ok := []string{"--secret", tokCmdSecret, "--room", "standup", "--sub", "alice"}
	cases := []struct {
		name string
		args []string
		want []string // substrings of the error
		not  []string // must not appear in it
	}{
		{"no flags", nil, []string{"--secret", "--room", "--sub"}, nil},
		{"no sub", ok[:4], []string{"missing", "--sub"}, []string{"--room", tokCmdSecret}},
		{"no secret", ok[2:], []string{"missing", "--secret"}, []string{"--room"}},
		{"unset env", []string{"--secret", "{env.CADDYWEBRTC_TEST_UNSET}", "--room", "r", "--sub", "s"}, []string{"--secret", "{env.CADDYWEBRTC_TEST_UNSET}", "empty"}, nil},
		{"bad ttl", append(ok, "--ttl", "soon"), []string{"--ttl"}, []string{tokCmdSecret}},
		{"zero ttl", append(ok, "--ttl", "0s"), []string{"ttl"}, []string{tokCmdSecret}},
		{"positional arg", append(ok, "extra"), []string{"extra"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runTokenCobra(t, tc.args...)
			if err == nil || out != "" {
				t.Fatalf("err %v, %d bytes of output; want an error and no output", err, len(out))
			}
			checkTokErrText(t, err, tc.want, tc.not)
		})
	}
}

func checkTokErrText(t *testing.T, err error, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	for _, n := range not {
		if strings.Contains(err.Error(), n) {
			t.Errorf("error %q mentions %q", err, n)
		}
	}
}

func TestTokenCommandRegistration(t *testing.T) {
	reg := caddycmd.Commands()[TokenCommand]
	for _, flag := range []string{"--secret", "--room", "--sub", "--name", "--ttl"} {
		if !strings.Contains(reg.Usage, flag) {
			t.Errorf("usage %q lacks %s", reg.Usage, flag)
		}
	}
	// The help must tell users how to keep the secret off the command line.
	if !strings.Contains(reg.Long, "{env.") || !strings.Contains(reg.Long, "{file.") {
		t.Error("long help does not document the placeholders")
	}
}

// --admin mints an admin token for the rooms API: rooms_admin, no room,
// so it never joins a room, and --room is refused with it.
func TestTokenCommandAdmin(t *testing.T) {
	out, err := runTokenCobra(t, "--secret", tokCmdSecret, "--admin", "--ttl", "10m")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSuffix(out, "\n")
	v := NewTokenVerifier([][]byte{[]byte(tokCmdSecret)})
	c, err := v.VerifyAdmin(tok, time.Now())
	if err != nil || !c.RoomsAdmin || c.ExpiresAt.Sub(time.Now()) > 10*time.Minute {
		t.Fatalf("admin token: %+v, %v", c, err)
	}
	if _, err := v.Verify(tok, "", time.Now()); err == nil {
		t.Fatal("an admin token joins a room")
	}
	room, err := runTokenCobra(t, "--secret", tokCmdSecret, "--room", "standup", "--sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyAdmin(strings.TrimSuffix(room, "\n"), time.Now()); !errors.Is(err, ErrTokenNotAdmin) {
		t.Fatalf("a room token as an admin token: %v", err)
	}
	if _, err := runTokenCobra(t, "--secret", tokCmdSecret, "--admin", "--room", "standup"); err == nil {
		t.Fatal("--admin with --room was accepted")
	}
}
