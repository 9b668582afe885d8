//! The simulated account's content, built from the words in `vocabulary.rs`. Every value is a
//! pure function of the seed, the account sizes and an index, so two simulators with the same
//! configuration serve identical bytes and tests can be generated on demand instead of being
//! held in memory. What changes with time (statuses, when a late test runs, which bugs exist)
//! comes from `lifecycle.rs`.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta};
use serde::Serialize;

use crate::vocabulary::{
    BRANDS, BUG_TITLES, BUG_TYPES, COMMENTS, DEVICES, DURATION_HOURS, ENVIRONMENTS, FEATURE_DESCRIPTIONS,
    FEATURE_NAMES, GOALS, HOW_TO_FIND, INSTRUCTIONS, INTEGRATIONS, Named, OFFSET_MINUTES, OUT_OF_SCOPE, PEOPLE,
    PLATFORMS, PRODUCT_TYPES, REVIEW_STATUSES, SECTION_NAMES, SEVERITIES, STEPS, TEST_KINDS, TESTERS, TESTING_TYPES,
    USER_STORIES, Version,
};

/// A test id is `product_id * TEST_ID_STRIDE + n`, so the id alone locates the test.
pub const TEST_ID_STRIDE: u64 = 1_000_000;
/// Test n must stay below the stride, or its id would run into the next product's.
pub const MAX_TESTS_PER_PRODUCT: u32 = (TEST_ID_STRIDE - 1) as u32;
/// A feature id is `product_id * FEATURE_ID_STRIDE + j`.
pub const FEATURE_ID_STRIDE: u64 = 1_000;

/// End of test 0 of every product (2026-06-01T00:00:00Z); test n ends n hours later.
const BASE_END_EPOCH: i64 = 1_780_272_000;
const HOUR: i64 = 3600;

/// When test n ends unless it was added late (see `lifecycle.rs`), in seconds since the epoch.
pub fn natural_end(n: u32) -> i64 {
    BASE_END_EPOCH + i64::from(n) * HOUR
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Separate random streams per aspect, so that e.g. a bug can recompute its test's title
/// without replaying the whole test.
#[derive(Clone, Copy)]
pub enum Stream {
    Product = 1,
    Feature,
    Title,
    Window,
    Scope,
    Test,
    Bugs,
    /// One bug, so that a bug not reported yet leaves the others as they are.
    Bug,
    /// A test's review and archiving delays and whether it is cancelled.
    Lifecycle,
    /// The customer's verdict on one bug.
    Verdict,
}

/// splitmix64's finaliser: a cheap, well-mixed hash.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: Stream, a: u64, b: u64) -> Self {
        let state = [stream as u64, a, b]
            .into_iter()
            .fold(mix(seed.wrapping_add(GOLDEN)), |acc, word| mix(acc ^ word.wrapping_add(GOLDEN)));
        Rng(state)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// `count` distinct items (fewer if the pool is smaller), starting at a random offset.
    fn distinct<'p, T>(&mut self, pool: &'p [T], count: usize) -> impl Iterator<Item = &'p T> {
        let start = if pool.is_empty() { 0 } else { self.below(pool.len()) };
        (0..count.min(pool.len())).map(move |i| &pool[(start + i) % pool.len()])
    }
}

// ---- Products ----------------------------------------------------------------------------

#[derive(Serialize, Clone)]
struct Connection {
    id: u64,
    title: &'static str,
    integration_type: &'static str,
}

#[derive(Serialize, Clone)]
struct TestTemplates {
    total: u32,
    count: u32,
}

#[derive(Serialize, Clone)]
pub struct Section {
    id: u64,
    name: String,
    connection: Option<Connection>,
    test_templates: TestTemplates,
}

#[derive(Serialize)]
pub struct Product {
    id: u64,
    name: String,
    description: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    default_section_id: u64,
    sections: Vec<Section>,
    sections_with_default: Vec<Section>,
    connection: Option<Connection>,
    remote_device_testing: bool,
}

#[derive(Serialize)]
pub struct Feature {
    id: u64,
    title: String,
    description: &'static str,
    howtofind: &'static str,
    user_stories: Vec<&'static str>,
}

#[derive(Serialize)]
struct Environment {
    id: u64,
    title: &'static str,
    url: String,
    username: &'static str,
    password: &'static str,
    access: String,
    proxy: bool,
    allow_orders: bool,
    access_type: &'static str,
    environment_test_information: Option<&'static str>,
    binary_app: Option<&'static str>,
}

/// Everything about one product that is small enough to build once: the product itself, its
/// features and its test environments. Tests and bugs are generated from it on demand.
pub struct ProductData {
    seed: u64,
    product: Product,
    features: Vec<Feature>,
    environments: Vec<Environment>,
}

/// The whole account except tests and bugs, which are generated per request.
pub struct Catalog {
    products: Vec<ProductData>,
}

impl Catalog {
    pub fn new(seed: u64, products: u32, features: u32) -> Self {
        let products = (1..=u64::from(products)).map(|id| ProductData::new(seed, id, features)).collect();
        Catalog { products }
    }

    pub fn products(&self) -> impl Iterator<Item = &ProductData> {
        self.products.iter()
    }

    /// Products are numbered from 1, so the id is the index plus one.
    pub fn product(&self, id: u64) -> Option<&ProductData> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get(index)
    }
}

fn section(id: u64, name: String, connection: &Option<Connection>, total: u32) -> Section {
    Section { id, name, connection: connection.clone(), test_templates: TestTemplates { total, count: 0 } }
}

fn build_product(seed: u64, id: u64) -> Product {
    let mut rng = Rng::new(seed, Stream::Product, id, 0);
    let kind = PRODUCT_TYPES[((id - 1) % PRODUCT_TYPES.len() as u64) as usize];
    let label = kind.replace('_', " ");
    let brand = rng.pick(BRANDS);
    let connection = id.is_multiple_of(4).then(|| {
        let (title, integration_type) = rng.pick(INTEGRATIONS);
        Connection { id: 500 + id, title, integration_type }
    });
    let default_section_id = id * 100;
    let default = section(default_section_id, "Default".into(), &connection, 20);
    // Every third product is organised in sections; the others only have the default one.
    let sections: Vec<Section> = if id.is_multiple_of(3) {
        rng.distinct(SECTION_NAMES, 2)
            .zip(1..)
            .map(|(name, k)| section(default_section_id + k, (*name).into(), &connection, 10))
            .collect()
    } else {
        Vec::new()
    };
    let mut sections_with_default = vec![default];
    sections_with_default.extend(sections.iter().cloned());
    Product {
        id,
        description: (!id.is_multiple_of(2)).then(|| format!("Customer-facing {label} of {brand}.")),
        name: format!("{brand} {label}"),
        kind,
        default_section_id,
        sections,
        sections_with_default,
        connection,
        remote_device_testing: rng.chance(30),
    }
}

fn build_feature(seed: u64, product_id: u64, j: u64) -> Feature {
    let mut rng = Rng::new(seed, Stream::Feature, product_id, j);
    let name = FEATURE_NAMES[(j - 1) as usize % FEATURE_NAMES.len()];
    let round = (j - 1) / FEATURE_NAMES.len() as u64;
    let stories = rng.between(0, 3);
    Feature {
        id: product_id * FEATURE_ID_STRIDE + j,
        title: if round == 0 { name.to_owned() } else { format!("{name} {}", round + 1) },
        description: rng.pick(FEATURE_DESCRIPTIONS),
        howtofind: rng.pick(HOW_TO_FIND),
        user_stories: rng.distinct(USER_STORIES, stories).copied().collect(),
    }
}

fn build_environments(product: &Product) -> Vec<Environment> {
    let slug = product.name.to_lowercase().replace(' ', "-");
    ENVIRONMENTS
        .iter()
        .zip(0..)
        .map(|(&(title, host), k)| Environment {
            id: product.id * 10 + k,
            title,
            url: format!("https://{host}.{slug}.example/"),
            username: if k == 1 { "" } else { "tester" },
            password: if k == 1 { "" } else { "correct-horse-7" },
            access: format!("https://access.{slug}.example/pages/{}", product.id),
            proxy: k == 2,
            allow_orders: k == 0,
            access_type: "url",
            environment_test_information: None,
            binary_app: None,
        })
        .collect()
}

impl ProductData {
    fn new(seed: u64, id: u64, features: u32) -> Self {
        let product = build_product(seed, id);
        let features = (1..=u64::from(features)).map(|j| build_feature(seed, id, j)).collect();
        let environments = build_environments(&product);
        ProductData { seed, product, features, environments }
    }

    pub fn id(&self) -> u64 {
        self.product.id
    }

    /// The random stream of one aspect of test or bug `index` of this product.
    pub fn rng(&self, stream: Stream, index: u64) -> Rng {
        Rng::new(self.seed, stream, self.product.id, index)
    }

    pub fn product(&self) -> &Product {
        &self.product
    }

    /// `products/{id}/features`: products with sections list theirs per section instead.
    pub fn product_features(&self) -> &[Feature] {
        if self.product.sections.is_empty() { &self.features } else { &[] }
    }

    /// `products/{id}/sections/{sid}/features`. The two sections overlap in one feature so
    /// that clients must de-duplicate by id; together they hold every feature.
    pub fn section_features(&self, section_id: u64) -> Option<&[Feature]> {
        if section_id == self.product.default_section_id {
            return Some(self.product_features());
        }
        let index = self.product.sections.iter().position(|s| s.id == section_id)?;
        let len = self.features.len();
        let middle = len.saturating_sub(1) / 2;
        Some(if index == 0 { &self.features[..(middle + 1).min(len)] } else { &self.features[middle..] })
    }
}

// ---- Exploratory tests -------------------------------------------------------------------

#[derive(Serialize)]
struct TestFeature<'a> {
    id: u64,
    feature_id: u64,
    title: &'a str,
    description: &'a str,
    location: &'a str,
    howtofind: &'a str,
    target_idx: Option<u32>,
    enable_default: bool,
    enable_content: Option<bool>,
    enable_visual: bool,
    custom_report_configurations: [(); 0],
    user_stories: &'a [&'static str],
}

#[derive(Serialize)]
struct Requirement {
    id: u64,
    browsers: &'static [Named],
    category: &'static Named,
    devices: [(); 0],
    input_devices: [(); 0],
    max_operating_system_version: Option<&'static Version>,
    min_operating_system_version: &'static Version,
    operating_system: &'static Named,
    vendor: Option<&'static Named>,
    browser_based: bool,
    gaming: bool,
}

#[derive(Serialize)]
struct Review {
    status: &'static str,
    instruction_comment: Option<&'static str>,
    test_environment_comment: Option<&'static str>,
    feature_comment: Option<&'static str>,
    bug_type_comment: Option<&'static str>,
    reviewed_at: String,
}

#[derive(Serialize)]
pub struct Test<'a> {
    id: u64,
    test_title: String,
    title: String,
    status: &'static str,
    test_environment: &'a Environment,
    features: Vec<TestFeature<'a>>,
    goal: String,
    goal_text: String,
    out_of_scope: String,
    out_of_scope_text: String,
    instructions: String,
    instructions_text: String,
    testing_type: Option<&'static str>,
    attachments: [(); 0],
    requirements: Vec<Requirement>,
    report_language: &'static str,
    section: Option<&'a Section>,
    product: &'a Product,
    enable_low: bool,
    enable_high: bool,
    enable_critical: bool,
    allow_device_clouds_test_scenario: bool,
    created_by: Option<&'static str>,
    submitted_by: Option<&'static str>,
    start_at: String,
    end_at: String,
    allowed_bug_types: &'static [&'static str],
    reviews: Vec<Review>,
    review_status: &'static str,
    demo: bool,
}

/// Which section a test runs in and which product features it covers.
struct Scope<'a> {
    section: Option<&'a Section>,
    features: Vec<&'a Feature>,
}

fn iso(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A markdown text and its plain-text twin, made of `low..=high` distinct sentences of `pool`.
fn prose(rng: &mut Rng, heading: &str, pool: &[&str], (low, high): (usize, usize)) -> (String, String) {
    let count = rng.between(low, high);
    let mut markdown = format!("**{heading}**\n\n");
    let mut text = format!("{heading}\n\n");
    for sentence in rng.distinct(pool, count) {
        markdown.push_str("- ");
        markdown.push_str(sentence);
        markdown.push('\n');
        text.push_str(sentence);
        text.push('\n');
    }
    (markdown, text)
}

fn requirement(rng: &mut Rng, id: u64, gaming: bool) -> Requirement {
    let platform = &PLATFORMS[rng.below(PLATFORMS.len())];
    Requirement {
        id,
        browsers: platform.browsers,
        category: &platform.category,
        devices: [],
        input_devices: [],
        max_operating_system_version: None,
        min_operating_system_version: &platform.min_version,
        operating_system: &platform.operating_system,
        vendor: None,
        browser_based: platform.browser_based,
        gaming,
    }
}

/// The test's copies of the product features it covers, with per-test ids.
fn test_features<'a>(rng: &mut Rng, test_id: u64, covered: &[&'a Feature]) -> Vec<TestFeature<'a>> {
    covered
        .iter()
        .zip(1..)
        .map(|(feature, k)| TestFeature {
            id: test_feature_id(test_id, k),
            feature_id: feature.id,
            title: &feature.title,
            description: feature.description,
            location: feature.howtofind,
            howtofind: feature.howtofind,
            target_idx: None,
            enable_default: true,
            enable_content: rng.chance(50).then_some(true),
            enable_visual: rng.chance(70),
            custom_report_configurations: [],
            user_stories: &feature.user_stories,
        })
        .collect()
}

/// Per-test feature k (from 1) of a test; bugs point at these ids.
fn test_feature_id(test_id: u64, k: u64) -> u64 {
    test_id * 10 + k
}

fn review(review_status: &str, start: DateTime<FixedOffset>) -> Review {
    Review {
        status: if review_status == "review_failed" { "failed" } else { "successful" },
        instruction_comment: None,
        test_environment_comment: None,
        feature_comment: None,
        bug_type_comment: None,
        reviewed_at: iso(start - TimeDelta::minutes(50)),
    }
}

impl ProductData {
    pub fn test_id(&self, n: u32) -> u64 {
        self.product.id * TEST_ID_STRIDE + u64::from(n)
    }

    fn test_title(&self, n: u32) -> String {
        let mut rng = self.rng(Stream::Title, n.into());
        let area = rng.pick(FEATURE_NAMES);
        format!("{} {area} – release {}.{}", rng.pick(TEST_KINDS), 1 + n / 20, n % 20)
    }

    /// Test n ends at its natural end plus `shift`, shown in a varying UTC offset.
    pub fn test_window(&self, n: u32, shift: TimeDelta) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
        let mut rng = self.rng(Stream::Window, n.into());
        let offset = FixedOffset::east_opt(rng.pick(OFFSET_MINUTES) * 60).expect("offset table holds valid offsets");
        let end = DateTime::from_timestamp(natural_end(n), 0).expect("test end lies in chrono's range") + shift;
        let end = end.with_timezone(&offset);
        (end - TimeDelta::hours(rng.pick(DURATION_HOURS)), end)
    }

    fn test_scope(&self, n: u32) -> Scope<'_> {
        let mut rng = self.rng(Stream::Scope, n.into());
        let product = &self.product;
        let section = if product.sections.is_empty() {
            (!rng.chance(20)).then(|| &product.sections_with_default[0])
        } else {
            Some(&product.sections[rng.below(product.sections.len())])
        };
        let pool = section.and_then(|s| self.section_features(s.id)).unwrap_or(&self.features);
        let count = rng.between(2, 3);
        Scope { section, features: rng.distinct(pool, count).collect() }
    }

    /// Test n, run `shift` later than its natural window, with its current status.
    pub fn test(&self, n: u32, shift: TimeDelta, status: &'static str) -> Test<'_> {
        let id = self.test_id(n);
        let mut rng = self.rng(Stream::Test, n.into());
        let scope = self.test_scope(n);
        let (start, end) = self.test_window(n, shift);
        let title = self.test_title(n);
        let (goal, goal_text) = prose(&mut rng, "Test goal", GOALS, (1, 2));
        let (instructions, instructions_text) = prose(&mut rng, "Instructions", INSTRUCTIONS, (2, 3));
        let (out_of_scope, out_of_scope_text) = prose(&mut rng, "Out of scope", OUT_OF_SCOPE, (1, 2));
        let features = test_features(&mut rng, id, &scope.features);
        let gaming = self.product.kind == "gaming";
        // Most tests require one platform, some two or three.
        let requirements = (1..=rng.pick(&[1, 1, 2, 3])).map(|k| requirement(&mut rng, id * 10 + k, gaming)).collect();
        let review_status = rng.pick(REVIEW_STATUSES);
        Test {
            id,
            test_title: title.clone(),
            title,
            status,
            test_environment: &self.environments[rng.below(self.environments.len())],
            features,
            goal,
            goal_text,
            out_of_scope,
            out_of_scope_text,
            instructions,
            instructions_text,
            testing_type: rng.pick(TESTING_TYPES),
            attachments: [],
            requirements,
            report_language: if rng.chance(80) { "en" } else { "de" },
            section: scope.section,
            product: &self.product,
            enable_low: rng.chance(60),
            enable_high: true,
            enable_critical: true,
            allow_device_clouds_test_scenario: false,
            created_by: rng.pick(PEOPLE),
            submitted_by: rng.pick(PEOPLE),
            start_at: iso(start),
            end_at: iso(end),
            allowed_bug_types: BUG_TYPES,
            reviews: vec![review(review_status, start)],
            review_status,
            demo: false,
        }
    }
}

// ---- Bugs --------------------------------------------------------------------------------

#[derive(Serialize)]
struct Author {
    name: &'static str,
}

/// Steps are documented as a string but arrive as a list in practice; serve both.
#[derive(Serialize)]
#[serde(untagged)]
enum Steps {
    List(Vec<&'static str>),
    Text(String),
}

#[derive(Serialize)]
struct Comment {
    id: u64,
    body: &'static str,
    author: Author,
}

#[derive(Serialize)]
struct TestRef {
    id: u64,
    title: String,
}

#[derive(Serialize)]
struct FeatureRef {
    id: u64,
}

#[derive(Serialize)]
struct Device {
    name: &'static str,
    operating_system: &'static str,
    operating_system_version: &'static str,
}

#[derive(Serialize)]
pub struct Bug {
    id: u64,
    title: &'static str,
    severity: &'static str,
    status: &'static str,
    auto_accepted: bool,
    known: bool,
    author: Author,
    expected_result: &'static str,
    actual_result: &'static str,
    steps: Steps,
    comments: Vec<Comment>,
    test: TestRef,
    test_feature: Option<FeatureRef>,
    reported_at: String,
    devices: Vec<Device>,
}

fn steps(rng: &mut Rng) -> Steps {
    let list: Vec<&'static str> = STEPS[..rng.between(3, STEPS.len())].to_vec();
    if rng.chance(20) { Steps::Text(list.join("\n")) } else { Steps::List(list) }
}

fn comments(rng: &mut Rng, bug_id: u64) -> Vec<Comment> {
    (1..=rng.between(0, 2) as u64)
        .map(|c| Comment { id: bug_id * 10 + c, body: rng.pick(COMMENTS), author: Author { name: rng.pick(TESTERS) } })
        .collect()
}

/// What a bug repeats about its test.
struct BugContext {
    test_id: u64,
    title: String,
    feature_count: usize,
    start: DateTime<FixedOffset>,
    minutes: usize,
}

fn bug(mut rng: Rng, test: &BugContext, id: u64, reported_at: DateTime<FixedOffset>, status: &'static str) -> Bug {
    let rng = &mut rng;
    let (name, operating_system, operating_system_version) = rng.pick(DEVICES);
    Bug {
        id,
        title: rng.pick(BUG_TITLES),
        severity: rng.pick(SEVERITIES),
        status,
        auto_accepted: rng.chance(20),
        known: rng.chance(10),
        author: Author { name: rng.pick(TESTERS) },
        expected_result: "The next step of the flow opens and shows the entered data.",
        actual_result: "Nothing happens; the console shows an uncaught TypeError.",
        steps: steps(rng),
        comments: comments(rng, id),
        test: TestRef { id: test.test_id, title: test.title.clone() },
        test_feature: (test.feature_count > 0)
            .then(|| FeatureRef { id: test_feature_id(test.test_id, 1 + rng.below(test.feature_count) as u64) }),
        reported_at: iso(reported_at),
        devices: vec![Device { name, operating_system, operating_system_version }],
    }
}

impl ProductData {
    /// Up to three bugs of test n (run `shift` late), each tied to one of the test's features
    /// and reported while it ran. `judge` gives a bug's status from its id and the time it was
    /// reported (seconds since the epoch), or None while it is not to be listed.
    pub fn bugs(&self, n: u32, shift: TimeDelta, judge: impl Fn(u64, i64) -> Option<&'static str>) -> Vec<Bug> {
        let count = self.rng(Stream::Bugs, n.into()).between(0, 3) as u64;
        if count == 0 {
            return Vec::new();
        }
        let (start, end) = self.test_window(n, shift);
        let test = BugContext {
            test_id: self.test_id(n),
            title: self.test_title(n),
            feature_count: self.test_scope(n).features.len(),
            start,
            minutes: (end - start).num_minutes() as usize,
        };
        let judged = |k| {
            let id = test.test_id * 10 + k;
            let mut rng = self.rng(Stream::Bug, id);
            let reported_at = test.start + TimeDelta::minutes(rng.below(test.minutes) as i64);
            let status = judge(id, reported_at.timestamp())?;
            Some(bug(rng, &test, id, reported_at, status))
        };
        (1..=count).filter_map(judged).collect()
    }
}
