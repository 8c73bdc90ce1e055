package card

import (
	"slices"
	"strings"
)

// LicensesURL is the Hub's list of license ids.
const LicensesURL = "https://huggingface.co/docs/hub/repositories-licenses"

// licenses are the ids the Hub accepts in a card's license key, in the
// order of the Hub's list, huggingface/hub-docs docs/hub/repositories-licenses.md
// ("the 'source of truth' we derive our lists of licenses from", julien-c in
// hub-docs issue #1755; the Hub's metadata editor refuses other ids). Base:
// the table at hub-docs commit 008d54d. Added from the hub-docs pull
// requests merged since: apple-ascl (#1311), llama3 (#1274), llama3.1
// (#1412), intel-research (#1502), apple-amlr (#1618), llama3.2 and llama3.3
// (#1619), llama4 (#1692), fair-noncommercial-research-license (#1708),
// h-research (#1773, "Add H Research License"), openmdw-1.0 (#1807; the Hub
// filters models by license:openmdw-1.0) and openmdw-1.1 (#2520). Less
// certain: eupl-1.2 (issue #1755 about the Hub refusing it is closed, PR
// #1758 adds the row). When the Hub adds a license, add it here; until then
// "other" with license_name works for any license.
var licenses = []string{
	"apache-2.0",
	"mit",
	"openrail",
	"bigscience-openrail-m",
	"creativeml-openrail-m",
	"bigscience-bloom-rail-1.0",
	"bigcode-openrail-m",
	"afl-3.0",
	"artistic-2.0",
	"bsl-1.0",
	"bsd",
	"bsd-2-clause",
	"bsd-3-clause",
	"bsd-3-clause-clear",
	"c-uda",
	"cc",
	"cc0-1.0",
	"cc-by-2.0",
	"cc-by-2.5",
	"cc-by-3.0",
	"cc-by-4.0",
	"cc-by-sa-3.0",
	"cc-by-sa-4.0",
	"cc-by-nc-2.0",
	"cc-by-nc-3.0",
	"cc-by-nc-4.0",
	"cc-by-nd-4.0",
	"cc-by-nc-nd-3.0",
	"cc-by-nc-nd-4.0",
	"cc-by-nc-sa-2.0",
	"cc-by-nc-sa-3.0",
	"cc-by-nc-sa-4.0",
	"cdla-sharing-1.0",
	"cdla-permissive-1.0",
	"cdla-permissive-2.0",
	"wtfpl",
	"ecl-2.0",
	"epl-1.0",
	"epl-2.0",
	"etalab-2.0",
	"eupl-1.1",
	"eupl-1.2",
	"agpl-3.0",
	"gfdl",
	"gpl",
	"gpl-2.0",
	"gpl-3.0",
	"lgpl",
	"lgpl-2.1",
	"lgpl-3.0",
	"isc",
	"h-research",
	"intel-research",
	"lppl-1.3c",
	"ms-pl",
	"apple-ascl",
	"apple-amlr",
	"mpl-2.0",
	"odc-by",
	"odbl",
	"openmdw-1.0",
	"openmdw-1.1",
	"openrail++",
	"osl-3.0",
	"postgresql",
	"ofl-1.1",
	"ncsa",
	"unlicense",
	"zlib",
	"pddl",
	"lgpl-lr",
	"deepfloyd-if-license",
	"fair-noncommercial-research-license",
	"llama2",
	"llama3",
	"llama3.1",
	"llama3.2",
	"llama3.3",
	"llama4",
	"gemma",
	"unknown",
	"other",
}

// commonLicenses are named in messages, the full list being long.
var commonLicenses = []string{"apache-2.0", "mit", "openrail++", "creativeml-openrail-m", "cc-by-4.0", "cc-by-nc-4.0", "llama3.1", "gemma"}

// Licenses returns the license ids the Hub knows, "other" last.
func Licenses() []string { return slices.Clone(licenses) }

// IsLicense reports an id of the Hub's list. Ids are lowercase; "MIT" is
// not one (SuggestLicense finds "mit").
func IsLicense(id string) bool { return slices.Contains(licenses, id) }

// SuggestLicense returns the id that s probably means ("Apache 2.0" →
// "apache-2.0", "CC-BY-NC-4.0" → "cc-by-nc-4.0"), or "".
func SuggestLicense(s string) string {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.NewReplacer(" ", "-", "_", "-", "license", "", "licence", "").Replace(s)
		return strings.Trim(s, "-")
	}
	want := norm(s)
	if want == "" {
		return ""
	}
	for _, id := range licenses {
		if norm(id) == want {
			return id
		}
	}
	return ""
}
