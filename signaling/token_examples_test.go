package signaling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tokenDocs is the page whose examples these tests run, so that the
// documented code keeps producing tokens Caddy accepts.
const tokenDocs = "../docs/tokens.md"

// exampleSecretEnv is the variable the documented examples read.
const exampleSecretEnv = "WEBRTC_TOKEN_SECRET"

// mintBlock matches fenced blocks tagged "mint-token" after the language.
var mintBlock = regexp.MustCompile("(?ms)^```(\\w+) mint-token\\n(.*?)^```\\s*$")

// tokenDocsExamples returns the mint-token code blocks of the docs by language.
func tokenDocsExamples(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(tokenDocs)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range mintBlock.FindAllStringSubmatch(string(doc), -1) {
		blocks[m[1]] = m[2]
	}
	return blocks
}

func exampleSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestTokenDocsExamples(t *testing.T) {
	blocks := tokenDocsExamples(t)
	for _, ex := range []struct{ lang, bin, file string }{
		{"js", "node", "mint.js"},
		{"python", "python3", "mint.py"},
	} {
		t.Run(ex.lang, func(t *testing.T) {
			code, ok := blocks[ex.lang]
			if !ok {
				t.Fatalf("%s has no %q mint-token block", tokenDocs, ex.lang)
			}
			bin, err := exec.LookPath(ex.bin)
			if err != nil {
				t.Skipf("%s not installed", ex.bin)
			}
			secret := exampleSecret(t)
			out := runTokenExample(t, bin, ex.file, code, secret)
			checkExampleToken(t, out, secret)
		})
	}
}

// runTokenExample runs code with the interpreter bin and returns its stdout.
func runTokenExample(t *testing.T, bin, file, code, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, path)
	cmd.Env = append(os.Environ(), exampleSecretEnv+"="+secret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, file, err, stderr.String())
	}
	return string(out)
}

// checkExampleToken verifies what the documented examples promise: a
// token for alice in standup, valid for an hour.
func checkExampleToken(t *testing.T, out, secret string) {
	t.Helper()
	now := time.Now()
	// The right secret second: rotation must not matter to the examples.
	v := NewTokenVerifier([][]byte{[]byte("not-the-secret"), []byte(secret)})
	c, err := v.Verify(strings.TrimSpace(out), "standup", now)
	if err != nil {
		t.Fatalf("token refused: %v", err)
	}
	if c.Subject != "alice" || c.Name != "Alice" {
		t.Fatalf("claims = %+v", c)
	}
	if d := c.ExpiresAt.Sub(now); d < time.Hour-time.Minute || d > time.Hour {
		t.Fatalf("exp is %v from now, want about 1h", d)
	}
	if _, err := NewTokenVerifier([][]byte{[]byte("not-the-secret")}).Verify(strings.TrimSpace(out), "standup", now); err == nil {
		t.Fatal("token accepted without its secret")
	}
}

// TestTokenDocsCommand runs the documented `caddy webrtc-token` line.
func TestTokenDocsCommand(t *testing.T) {
	doc, err := os.ReadFile(tokenDocs)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^caddy webrtc-token (.*)$`).FindStringSubmatch(string(doc))
	if line == nil {
		t.Fatalf("%s has no `caddy webrtc-token` line", tokenDocs)
	}
	// The line has no spaces inside quotes, so dropping the shell's
	// single quotes is all the parsing it needs.
	args := strings.Fields(strings.ReplaceAll(line[1], "'", ""))
	secret := exampleSecret(t)
	t.Setenv(exampleSecretEnv, secret)
	out, err := runTokenCobra(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	checkExampleToken(t, out, secret)
}
