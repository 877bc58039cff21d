package firefox

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// pref is one Firefox preference; value is a string, bool or int.
type pref struct {
	name  string
	value any
}

// mediaPrefs give the browser fake media devices that need no permission
// prompt, let media play without a user gesture and let WebRTC use plain
// host addresses.
var mediaPrefs = []pref{
	// getUserMedia returns a generated test pattern and tone.
	{"media.navigator.streams.fake", true},
	// No permission prompt for camera and microphone.
	{"media.navigator.permission.disabled", true},
	// Remote video plays with sound without a click on the page.
	{"media.autoplay.default", 0},
	{"media.autoplay.blocking_policy", 0},
	// Documented as letting ICE use the loopback interface. Firefox 153 ESR
	// on Linux gathered no 127.0.0.1 candidate with it while another
	// interface was up, and none at all with loopback alone: a machine
	// running browser calls with Firefox needs a non-loopback address.
	{"media.peerconnection.ice.loopback", true},
	// Host candidates carry IP addresses, not mDNS .local names that a
	// machine without an mDNS responder cannot resolve.
	{"media.peerconnection.ice.obfuscate_host_addresses", false},
	// Never ask about or pick a WebRTC proxy.
	{"media.peerconnection.ice.proxy_only_if_behind_proxy", false},
}

// quietPrefs keep Firefox from reaching out to the network on its own
// (updates, telemetry, studies, remote settings, safe browsing, captive
// portal and connectivity checks), from showing first-run pages and from
// slowing down pages in windows that are not focused. Firefox's remote
// agent sets many of these too, but only once it has started; some are
// read at startup and must be in the profile.
var quietPrefs = []pref{
	{"app.update.disabledForTesting", true},
	{"browser.backup.enabled", false},
	{"app.update.auto", false},
	{"app.update.checkInstallTime", false},
	{"app.normandy.enabled", false},
	{"app.normandy.api_url", ""},
	{"app.shield.optoutstudies.enabled", false},
	{"nimbus.rollouts.enabled", false},
	{"services.settings.server", "data:,#remote-settings-disabled"},
	{"security.remote_settings.intermediates.enabled", false},
	{"security.remote_settings.crlite_filters.enabled", false},
	{"extensions.update.enabled", false},
	{"extensions.systemAddon.update.enabled", false},
	{"extensions.getAddons.cache.enabled", false},
	{"extensions.installDistroAddons", false},
	{"extensions.autoDisableScopes", 0},
	{"extensions.enabledScopes", 5},
	{"browser.search.update", false},
	{"browser.safebrowsing.blockedURIs.enabled", false},
	{"browser.safebrowsing.downloads.enabled", false},
	{"browser.safebrowsing.malware.enabled", false},
	{"browser.safebrowsing.phishing.enabled", false},
	{"browser.safebrowsing.update.enabled", false},
	{"datareporting.healthreport.uploadEnabled", false},
	{"datareporting.policy.dataSubmissionEnabled", false},
	{"datareporting.policy.dataSubmissionPolicyBypassNotification", true},
	{"toolkit.telemetry.enabled", false},
	{"toolkit.telemetry.unified", false},
	{"toolkit.telemetry.archive.enabled", false},
	{"toolkit.telemetry.server", "data:,"},
	{"network.captive-portal-service.enabled", false},
	{"captivedetect.canonicalURL", ""},
	{"network.connectivity-service.enabled", false},
	{"network.dns.disablePrefetch", true},
	{"network.prefetch-next", false},
	{"network.http.speculative-parallel-limit", 0},
	{"network.sntp.pools", ""},
	{"network.manage-offline-status", false},
	{"dom.push.connection.enabled", false},
	{"media.gmp-manager.updateEnabled", false},
	{"media.gmp-gmpopenh264.enabled", false},
	{"media.sanity-test.disabled", true},
	{"geo.provider.network.url", ""},
	{"browser.region.network.url", ""},
	{"browser.newtabpage.enabled", false},
	{"browser.newtabpage.activity-stream.feeds.system.topstories", false},
	{"browser.newtabpage.activity-stream.showSponsoredTopSites", false},
	{"browser.topsites.contile.enabled", false},
	{"browser.urlbar.suggest.searches", false},
	{"browser.shell.checkDefaultBrowser", false},
	{"browser.startup.page", 0},
	{"browser.startup.homepage", "about:blank"},
	{"browser.startup.homepage_override.mstone", "ignore"},
	{"startup.homepage_welcome_url", "about:blank"},
	{"startup.homepage_welcome_url.additional", ""},
	{"browser.sessionstore.resume_from_crash", false},
	{"browser.aboutwelcome.enabled", false},
	{"browser.translations.automaticallyPopup", false},
	{"toolkit.startup.max_resumed_crashes", -1},
	{"datareporting.healthreport.service.enabled", false},
	{"dom.ipc.reportProcessHangs", false},
	{"dom.max_script_run_time", 0},
	{"dom.disable_open_during_load", false},
	{"focusmanager.testmode", true},
	// Several windows run at once (the two ends of a call); none may have
	// its timers throttled for being in the background.
	{"dom.min_background_timeout_value", 4},
	{"dom.timeout.enable_budget_timer_throttling", false},
}

// plan returns the preferences for opts: the defaults, then opts.Prefs
// (which override them) in name order.
func (o Options) plan() ([]pref, error) {
	prefs := slices.Concat(mediaPrefs, quietPrefs)
	for _, name := range slices.Sorted(maps.Keys(o.Prefs)) {
		value := o.Prefs[name]
		switch value.(type) {
		case string, bool, int:
		default:
			return nil, fmt.Errorf("firefox: pref %q: value %v is %T, want string, bool or int", name, value, value)
		}
		if name == "" || strings.ContainsAny(name, "\"\\\n") {
			return nil, fmt.Errorf("firefox: invalid pref name %q", name)
		}
		if i := slices.IndexFunc(prefs, func(p pref) bool { return p.name == name }); i >= 0 {
			prefs[i].value = value
		} else {
			prefs = append(prefs, pref{name, value})
		}
	}
	return prefs, nil
}

// userJS renders prefs as the lines of a profile's user.js.
func userJS(prefs []pref) []byte {
	var b strings.Builder
	for _, p := range prefs {
		name, _ := json.Marshal(p.name)
		value, _ := json.Marshal(p.value)
		fmt.Fprintf(&b, "user_pref(%s, %s);\n", name, value)
	}
	return []byte(b.String())
}
