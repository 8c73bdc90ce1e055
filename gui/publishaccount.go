package gui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/advice"
	"modelpub/core/auth"
	"modelpub/core/hub"
	"modelpub/core/publish"
)

// hubConfig says which Hub the Publish panel talks to and where it keeps
// the token. The zero value is the real thing: $HF_ENDPOINT or
// huggingface.co, the OS keyring, the user's cache folder; tests point it
// at an emulator and a mock keyring.
type hubConfig struct {
	Endpoint   string              // "" → $HF_ENDPOINT → https://huggingface.co
	Keyring    auth.Keyring        // nil → the OS keyring
	Getenv     func(string) string // nil → os.Getenv (HF_TOKEN, HF_ENDPOINT, …)
	Home       string              // home folder for the token file of `hf auth login`; "" → the user's
	CacheDir   string              // staging and upload state; "" → $XDG_CACHE_HOME/modelpub
	HTTPClient *http.Client        // nil → the hub client's default
	Retry      hub.RetryPolicy     // zero → the hub client's default
	Version    string              // Modelpub's version, for the User-Agent
}

func (c hubConfig) authOptions() auth.Options {
	return auth.Options{Endpoint: c.Endpoint, Keyring: c.Keyring, Getenv: c.Getenv, Home: c.Home}
}

// endpoint is the Hub's base URL, without a trailing slash.
func (c hubConfig) endpoint() string { return c.authOptions().EndpointURL() }

// pageURL is the Hub's base URL to show or open: the endpoint without
// any user information, query or fragment (hub.RedactURL).
func (c hubConfig) pageURL() string { return hub.RedactURL(c.endpoint()) }

// host names the Hub for people: "huggingface.co", "127.0.0.1:8765".
func (c hubConfig) host() string { return auth.Account(c.endpoint()) }

// accountTimeout bounds the whoami call of the account check and the login.
const accountTimeout = 30 * time.Second

// whoami asks the Hub what token may do.
func (c hubConfig) whoami(token string) (*publish.Account, error) {
	client, err := hub.NewClient(hub.Options{Endpoint: c.endpoint(), Token: token, Version: c.Version,
		HTTPClient: c.HTTPClient, Retry: c.Retry})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), accountTimeout)
	defer cancel()
	return publish.CheckAccount(ctx, client)
}

// sourceSession marks a token kept in memory for this session only, as
// the keyring could not keep it.
const sourceSession auth.Source = "this session only"

// checkAccount finds the token and asks the Hub what it may do, off the UI
// goroutine.
func (pp *publishPanel) checkAccount() {
	pp.checked = true
	pp.accountGen++
	gen, cfg, session := pp.accountGen, pp.cfg, pp.session
	pp.setAccountText("Checking the token with "+cfg.host()+"…", widget.MediumImportance)
	pp.e.spawn(func() {
		tok, err := session, error(nil)
		if tok.IsZero() {
			tok, err = auth.Resolve(cfg.authOptions())
		}
		var acct *publish.Account
		if err == nil {
			acct, err = cfg.whoami(tok.Value())
		}
		pp.e.do(func() {
			if gen == pp.accountGen {
				pp.setAccount(tok, acct, err)
			}
		})
	})
}

// setAccount shows the outcome of an account check.
func (pp *publishPanel) setAccount(tok auth.Token, acct *publish.Account, err error) {
	pp.token, pp.account = tok, acct
	if err != nil {
		pp.account = nil
		if errors.Is(err, auth.ErrNoToken) {
			pp.token = auth.Token{}
		}
	}
	var ke *auth.KeyringError
	if errors.Is(err, auth.ErrNoToken) && errors.As(err, &ke) {
		pp.noKeyring = ke.Reason
	}
	pp.showAccount()
	if err != nil && !errors.Is(err, auth.ErrNoToken) {
		what := "The token"
		if !tok.IsZero() {
			what = fmt.Sprintf("The token (from %s)", tok.Source)
		}
		next := advice.For(err, pp.cfg.endpoint())
		switch {
		case errors.Is(err, hub.ErrNetwork) || errors.Is(err, context.DeadlineExceeded):
			next = "Check the connection, then log in again to retry."
		case next == "":
			next = "Log in again with a valid token."
		}
		pp.setAccountText(fmt.Sprintf("%s could not be checked with %s: %s\n%s", what, pp.cfg.host(),
			advice.Message(err, pp.cfg.endpoint()), next), widget.DangerImportance)
	}
	pp.update()
	pp.scheduleRemote()
}

// showAccount shows who is logged in and fills the namespace picker.
func (pp *publishPanel) showAccount() {
	a := pp.account
	if a == nil {
		text := fmt.Sprintf("Not logged in to %s. Log in with a Hub token that has the write role "+
			"to publish; Dry run works without one.", pp.cfg.host())
		if pp.noKeyring != "" {
			text += "\nThe OS keyring cannot be used (" + pp.noKeyring + "): a token you log in with can be " +
				"kept for this session only."
		}
		pp.setAccountText(text, widget.MediumImportance)
		pp.namespace.SetOptions(nil)
		pp.namespace.ClearSelected()
		return
	}
	text := fmt.Sprintf("Logged in to %s as %s: token role %s, from %s.", pp.cfg.host(), a.User, a.Role, pp.token.Source)
	if orgs := a.Namespaces[min(1, len(a.Namespaces)):]; len(orgs) > 0 {
		text += " Organisations you can write to: " + strings.Join(orgs, ", ") + "."
	}
	imp := widget.MediumImportance
	if a.Role == "read" {
		imp = widget.DangerImportance
		text += " This token is read-only: it cannot publish. " + advice.For(publish.ErrReadOnlyToken, pp.cfg.endpoint())
	}
	pp.setAccountText(text, imp)
	prev := pp.namespace.Selected
	pp.namespace.SetOptions(a.Namespaces)
	switch {
	case prev != "" && containsFold(a.Namespaces, prev):
		pp.namespace.SetSelected(prev)
	case len(a.Namespaces) > 0:
		pp.namespace.SetSelected(a.Namespaces[0])
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// setAccountText shows text about the account; the settings are laid out
// again, as its height may change.
func (pp *publishPanel) setAccountText(text string, imp widget.Importance) {
	pp.accountText.Importance = imp
	pp.accountText.SetText(text)
	if pp.left != nil {
		pp.left.Refresh()
	}
}

// showLogin asks for a token.
func (pp *publishPanel) showLogin() {
	entry := widget.NewPasswordEntry()
	entry.PlaceHolder = "hf_…"
	entry.Validator = func(s string) error {
		if strings.TrimSpace(s) == "" {
			return errors.New("paste a token")
		}
		return nil
	}
	item := widget.NewFormItem("Token", entry)
	item.HintText = "A token with the write role: " + advice.TokenSource(pp.cfg.endpoint(), "") +
		". It is kept in the OS keyring."
	d := dialog.NewForm("Log in to "+pp.cfg.host(), "Log in", "Cancel", []*widget.FormItem{item}, func(ok bool) {
		if ok {
			pp.login(entry.Text)
		}
	}, pp.e.win)
	// Enter logs in, as the Log in button does (not while the entry is empty).
	entry.OnSubmitted = func(string) { d.Submit() }
	pp.loginDialog, pp.loginEntry = d, entry
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	d.Show()
	pp.e.win.Canvas().Focus(entry)
}

// login checks token with the Hub, then keeps it in the keyring; a keyring
// that cannot keep it is explained, with the offer to use the token for
// this session only.
func (pp *publishPanel) login(raw string) {
	token, err := auth.ReadToken(strings.NewReader(raw))
	if err != nil {
		pp.e.showProblem("Not a Hub token", "What was pasted is not a token: it is empty, or has spaces or "+
			"control characters inside.", "Copy the token again (it starts with hf_) and log in again: "+
			advice.TokenSource(pp.cfg.endpoint(), "")+".")
		return
	}
	pp.checked = true
	pp.accountGen++
	gen, cfg := pp.accountGen, pp.cfg
	pp.setAccountText("Checking the token with "+cfg.host()+"…", widget.MediumImportance)
	pp.loginBtn.Disable()
	pp.e.spawn(func() {
		acct, err := cfg.whoami(token)
		var storeErr error
		if err == nil {
			storeErr = auth.Store(cfg.authOptions(), token)
		}
		pp.e.do(func() {
			if gen == pp.accountGen {
				pp.loggedIn(token, acct, err, storeErr)
			}
		})
	})
}

// loggedIn shows the outcome of a login.
func (pp *publishPanel) loggedIn(token string, acct *publish.Account, err, storeErr error) {
	if err != nil {
		pp.showAccount() // as before the attempt
		pp.update()
		// What the Hub answered, without its request id (kept under
		// Details…), then the advice, once.
		title, next := publishErrorText(err, pp.cfg.endpoint())
		pp.showFailure(title, "Logging in to "+pp.cfg.host()+" failed: "+publishErrorCause(err, pp.cfg.endpoint()),
			next, err.Error())
		return
	}
	if storeErr != nil {
		pp.showAccount()
		pp.update()
		if errors.Is(storeErr, auth.ErrNoKeyring) {
			pp.offerSessionToken(token, acct, storeErr)
			return
		}
		pp.e.showProblem("The token was not kept", storeErr.Error(), "Log in again.")
		return
	}
	pp.session = auth.Token{}
	pp.setAccount(auth.NewToken(token, auth.SourceKeyring), acct, nil)
}

// offerSessionToken explains why the keyring cannot keep a working token
// and offers to use it until the app quits.
func (pp *publishPanel) offerSessionToken(token string, acct *publish.Account, storeErr error) {
	// The KeyringError's own hint is for the command line (--token-stdin);
	// the text below says what to do here.
	reason := storeErr.Error()
	var ke *auth.KeyringError
	if errors.As(storeErr, &ke) {
		reason = ke.Reason
	}
	pp.noKeyring = reason
	text := fmt.Sprintf("The token works: it belongs to %s. But Modelpub cannot keep it in the OS keyring: %s.\n\n"+
		"Use it for this session only: Modelpub keeps it in memory and forgets it when it quits. To keep a "+
		"token across sessions, fix the keyring and log in again, or set HF_TOKEN before starting Modelpub.",
		acct.User, reason)
	label := widget.NewLabel(text)
	label.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("The token cannot be kept", "Use for this session only", "Cancel", label,
		func(ok bool) {
			if ok {
				pp.useSessionToken(token, acct)
			}
		}, pp.e.win)
	pp.keyringDialog = d
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	label.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9)-4*theme.Padding(), label.MinSize().Height))
	d.Resize(fyne.NewSize(min(560, pp.e.win.Canvas().Size().Width*0.9), d.MinSize().Height))
	d.Show()
}

// useSessionToken logs in with a token kept in memory only.
func (pp *publishPanel) useSessionToken(token string, acct *publish.Account) {
	pp.accountGen++
	pp.session = auth.NewToken(token, sourceSession)
	pp.setAccount(pp.session, acct, nil)
}

// logout forgets the token: a session token at once, a keyring one in the
// keyring. A token from HF_TOKEN or the file of `hf auth login` is not
// Modelpub's to remove: a dialog says how.
func (pp *publishPanel) logout() {
	switch pp.token.Source {
	case sourceSession:
		pp.session = auth.Token{}
		pp.loggedOut()
	case auth.SourceKeyring:
		pp.accountGen++
		gen, cfg := pp.accountGen, pp.cfg
		pp.logoutBtn.Disable()
		pp.e.spawn(func() {
			err := auth.Forget(cfg.authOptions())
			pp.e.do(func() {
				if gen != pp.accountGen {
					return
				}
				if err != nil && !errors.Is(err, auth.ErrNotLoggedIn) {
					pp.update()
					pp.e.showProblem("Cannot log out", err.Error(), "Remove the entry \""+auth.Service+
						"\" for "+cfg.host()+" with the desktop's password manager (Passwords and Keys), then restart Modelpub.")
					return
				}
				pp.loggedOut()
			})
		})
	case auth.SourceEnv:
		dialog.ShowInformation("The token comes from HF_TOKEN", "Modelpub uses the token of the HF_TOKEN "+
			"environment variable and does not change it. To log out, unset HF_TOKEN and start Modelpub again.", pp.e.win)
	case auth.SourceFile:
		dialog.ShowInformation("The token comes from hf", fmt.Sprintf("Modelpub uses the token that `hf auth login` "+
			"keeps in %s, and only reads it. To log out, run `hf auth logout`, then start Modelpub again.", pp.token.Path), pp.e.win)
	default:
		pp.loggedOut()
	}
}

func (pp *publishPanel) loggedOut() {
	pp.accountGen++
	pp.token, pp.account = auth.Token{}, nil
	pp.showAccount()
	pp.update()
	pp.scheduleRemote()
}
