//! The words and fixed tables the simulated account is made of: names, texts, platforms and
//! devices (statuses come from the clock, in `lifecycle.rs`). Generation (`generation.rs`)
//! picks from them by seeded index, so changing or reordering an entry changes the bytes the
//! simulator serves.

use serde::Serialize;

// ---- Products ----------------------------------------------------------------------------

pub const PRODUCT_TYPES: &[&str] =
    &["website", "mobile_app_ios", "mobile_app_android", "mobile_app_windows", "streaming_app", "gaming"];
pub const BRANDS: &[&str] =
    &["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Wonka", "Tyrell", "Soylent", "Cyberdyne"];
pub const SECTION_NAMES: &[&str] =
    &["Checkout", "Onboarding", "Search", "Account area", "Payments", "Editorial content"];
pub const INTEGRATIONS: &[(&str, &str)] =
    &[("Jira Cloud", "jira"), ("Azure DevOps", "azure_devops"), ("GitHub Issues", "github")];

pub const FEATURE_NAMES: &[&str] = &[
    "Login",
    "Registration",
    "Product search",
    "Shopping cart",
    "Checkout",
    "Order history",
    "Wishlist",
    "Profile settings",
    "Password reset",
    "Newsletter signup",
    "Store locator",
    "Product reviews",
    "Live chat",
    "Push notifications",
    "Payment methods",
];
pub const FEATURE_DESCRIPTIONS: &[&str] = &[
    "Sign-in with e-mail and password or a social account.",
    "All steps up to the order confirmation.",
    "Autocomplete, filters and sorting of results.",
    "Add, remove and change quantities; totals update.",
    "Personal account pages, addresses and payment data.",
    "Editorial pages with videos and galleries.",
];
pub const HOW_TO_FIND: &[&str] = &[
    "Top right corner of the start page.",
    "Main menu > My account (log in first).",
    "Click the cart icon in the header.",
    "Linked from the footer of every page.",
    "Could be found anywhere",
];
pub const USER_STORIES: &[&str] = &[
    "As a customer I can reset my password.",
    "As a customer I get a confirmation e-mail.",
    "As a guest I can buy without an account.",
    "As a customer I can filter by price.",
    "As a customer I can pay by card or invoice.",
    "As a customer I find my last orders.",
];

pub const ENVIRONMENTS: &[(&str, &str)] =
    &[("Staging", "staging"), ("Production", "www"), ("Release preview", "preview")];

// ---- Exploratory tests -------------------------------------------------------------------

pub const TEST_KINDS: &[&str] =
    &["Exploratory test", "Regression run", "Release check", "Smoke test", "Usability session"];
pub const TESTING_TYPES: &[Option<&str>] =
    &[Some("coverage"), Some("coverage"), Some("focused"), Some("usability"), Some("rapid"), None];
pub const REVIEW_STATUSES: &[&str] = &["review_successful", "review_successful", "review_failed"];
pub const PEOPLE: &[Option<&str>] =
    &[None, Some("Maria Schmidt"), Some("Jonas Weber"), Some("Aylin Demir"), Some("Tom Baker")];
pub const OFFSET_MINUTES: &[i32] = &[0, 60, 120, -300, 330, -480, 540, -180, 345];
pub const DURATION_HOURS: &[i64] = &[2, 24, 24, 48, 72, 168];
pub const BUG_TYPES: &[&str] = &["default", "content", "visual"];

pub const GOALS: &[&str] = &[
    "Make sure that a first-time visitor can find a product and buy it without help.",
    "Find functional bugs in the new checkout that block or slow down the purchase.",
    "Verify that the redesigned navigation works on all supported screen sizes.",
    "Check that prices, discounts and taxes are calculated correctly in every step.",
    "Uncover crashes and data loss when the connection drops during an order.",
    "Confirm that the fixes of the last release did not break existing flows.",
    "Assess whether texts, images and translations are complete and consistent.",
];
pub const INSTRUCTIONS: &[&str] = &[
    "Use the test user provided in the environment description; do not register new accounts.",
    "Orders placed on staging are not shipped, so please complete the whole checkout.",
    "Attach a screen recording to every functional bug and name the exact time it happens.",
    "Use the coupon code TESTIO10 to check the discount handling.",
    "Switch between portrait and landscape at least once per flow on mobile devices.",
    "Clear cookies before you start so that the consent banner is shown.",
    "Report every problem separately, even if two bugs look related.",
    "Try unusual input too: very long names, emoji, addresses with special characters.",
    "If a page loads longer than ten seconds, report it with the network conditions you had.",
    "Payment with real credit cards is not possible; use the test cards from the list below.",
];
pub const OUT_OF_SCOPE: &[&str] = &[
    "The legacy mobile website under m.example is out of scope.",
    "Known issue: the store locator map loads slowly, please do not report it.",
    "Spelling mistakes in the legal pages will be fixed separately.",
    "Performance of the admin back office is not part of this test.",
    "Third-party widgets (chat, reviews) are maintained by vendors and not in scope.",
];

#[derive(Serialize)]
pub struct Named {
    id: u32,
    key: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
pub struct Version {
    id: u32,
    name: &'static str,
}

/// A device platform a test can require.
pub struct Platform {
    pub category: Named,
    pub operating_system: Named,
    pub min_version: Version,
    pub browsers: &'static [Named],
    pub browser_based: bool,
}

const fn named(id: u32, key: &'static str, name: &'static str) -> Named {
    Named { id, key, name }
}

const COMPUTERS: Named = named(1, "computer", "Computers");
const SMARTPHONES: Named = named(2, "smartphone", "Smartphones");
const TABLETS: Named = named(3, "tablet", "Tablets");
const CHROME: Named = named(2, "chrome", "Chrome");
const FIREFOX: Named = named(3, "firefox", "Firefox");
const SAFARI: Named = named(4, "safari", "Safari");
const EDGE: Named = named(5, "edge", "Edge");

pub static PLATFORMS: [Platform; 5] = [
    Platform {
        category: COMPUTERS,
        operating_system: named(6, "windows", "Windows"),
        min_version: Version { id: 198, name: "10" },
        browsers: &[CHROME, FIREFOX, EDGE],
        browser_based: true,
    },
    Platform {
        category: COMPUTERS,
        operating_system: named(7, "macos", "macOS"),
        min_version: Version { id: 240, name: "13" },
        browsers: &[SAFARI, CHROME],
        browser_based: true,
    },
    Platform {
        category: SMARTPHONES,
        operating_system: named(8, "ios", "iOS"),
        min_version: Version { id: 310, name: "16" },
        browsers: &[SAFARI],
        browser_based: false,
    },
    Platform {
        category: SMARTPHONES,
        operating_system: named(9, "android", "Android"),
        min_version: Version { id: 402, name: "12" },
        browsers: &[CHROME],
        browser_based: false,
    },
    Platform {
        category: TABLETS,
        operating_system: named(10, "ipados", "iPadOS"),
        min_version: Version { id: 330, name: "16" },
        browsers: &[SAFARI, CHROME],
        browser_based: true,
    },
];

// ---- Bugs --------------------------------------------------------------------------------

pub const BUG_TITLES: &[&str] = &[
    "Checkout button does nothing after changing the delivery address",
    "Price in the cart differs from the price on the product page",
    "App crashes when the device is rotated on the payment screen",
    "Search results are empty for terms with umlauts",
    "Password reset link in the e-mail leads to a 404 page",
    "Overlapping text in the footer on small screens",
];
pub const SEVERITIES: &[&str] = &["low", "high", "critical", "visual", "content"];
pub const TESTERS: &[&str] = &["ana_k", "bughunter42", "l.morales", "tester_tim", "qa_priya"];
pub const STEPS: &[&str] = &[
    "Open the start page.",
    "Log in with the test user.",
    "Add any product to the cart.",
    "Open the cart and click \"Checkout\".",
    "Change the delivery address.",
    "Click \"Continue\".",
];
pub const COMMENTS: &[&str] = &[
    "Could you please add the exact product you used?",
    "Reproduced on a second device, see the attached video.",
    "Thanks, forwarded to the development team.",
];
pub const DEVICES: &[(&str, &str, &str)] = &[
    ("Desktop PC", "Windows", "11"),
    ("MacBook Pro", "macOS", "14.4"),
    ("iPhone 15", "iOS", "17.4"),
    ("Galaxy S23", "Android", "14"),
    ("iPad Air", "iPadOS", "17.3"),
];
