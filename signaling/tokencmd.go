package signaling

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// TokenCommand is the name of the subcommand that mints room tokens.
const TokenCommand = "webrtc-token"

// defaultTokenTTL suits the command's use: a token pasted into a test
// page or a script, not one kept around.
const defaultTokenTTL = time.Hour

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  TokenCommand,
		Usage: "--secret <secret> (--room <room> --sub <user id> [--name <display name>] | --admin [--sub <who>]) [--ttl <duration>]",
		Short: "Prints a room access token for webrtc_signaling",
		Long: `
Mints a room access token (an HS256 JWT) for one user and one room, and
prints it on stdout followed by a newline. Apps usually mint tokens
themselves (see docs/tokens.md); this command is for scripts and tests.

--secret
    The signing secret, used as the bytes of the string. Placeholders such
    as {env.WEBRTC_TOKEN_SECRET} or {file./run/secrets/webrtc_token} are
    replaced, so the secret need not appear on the command line, where
    other users (ps) and the shell history can see it. Quote the
    placeholder in the shell: '{env.WEBRTC_TOKEN_SECRET}'.

--room
    The room the token grants.

--sub
    The user id (the sub claim).

--name
    Optional display name (the name claim).

--admin
    Mints an admin token for the rooms API (webrtc_rooms) instead: it
    carries "rooms_admin": true and no room, so it joins no room; --room
    and --name are refused, --sub is optional.

--ttl
    How long the token stays valid, e.g. 30m, 1h, 1d. Default: 1h.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Args = cobra.NoArgs
			cmd.Flags().String("secret", "", "Signing secret or a placeholder: {env.VAR}, {file./path}")
			cmd.Flags().String("room", "", "Room the token grants")
			cmd.Flags().String("sub", "", "User id")
			cmd.Flags().String("name", "", "Display name (optional)")
			cmd.Flags().String("ttl", defaultTokenTTL.String(), "Validity, e.g. 30m, 1h, 1d")
			cmd.Flags().Bool("admin", false, "Mint an admin token for the rooms API (rooms_admin, no room)")
			// Wrapped per call so the output goes to the command's writer,
			// which tests replace; it is stdout otherwise.
			cmd.RunE = func(c *cobra.Command, args []string) error {
				run := func(fl caddycmd.Flags) (int, error) {
					return runTokenCommand(fl, c.OutOrStdout(), time.Now())
				}
				return caddycmd.WrapCommandFuncForCobra(run)(c, args)
			}
		},
	})
}

// runTokenCommand mints the token the flags describe and writes it to out.
func runTokenCommand(fl caddycmd.Flags, out io.Writer, now time.Time) (int, error) {
	secret, err := tokenCommandSecret(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ttl, err := caddy.ParseDuration(fl.String("ttl"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("--ttl: %v", err)
	}
	var tok string
	if fl.Bool("admin") {
		tok, err = MintAdminToken(secret, fl.String("sub"), ttl, now)
	} else {
		tok, err = MintToken(secret, fl.String("room"), fl.String("sub"), fl.String("name"), ttl, now)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if _, err := fmt.Fprintln(out, tok); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("writing token: %v", err)
	}
	return caddy.ExitCodeSuccess, nil
}

// tokenCommandSecret checks the required flags and resolves the secret's
// placeholders the same way the TURN secrets in a config are resolved.
func tokenCommandSecret(fl caddycmd.Flags) ([]byte, error) {
	required := []string{"secret", "room", "sub"}
	if fl.Bool("admin") {
		if fl.String("room") != "" || fl.String("name") != "" {
			return nil, errors.New("--admin mints a token for no room: drop --room and --name")
		}
		required = required[:1]
	}
	var missing []string
	for _, name := range required {
		if fl.String(name) == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return nil, errors.New("missing required flag(s): " + strings.Join(missing, ", "))
	}
	secrets, err := turncreds.ResolveSecrets(caddy.NewReplacer(), []string{fl.String("secret")})
	if err != nil {
		// The error quotes the flag only when it resolved to nothing, so
		// it holds placeholders, not a secret.
		return nil, fmt.Errorf("--secret: %w", err)
	}
	return []byte(secrets[0]), nil
}
