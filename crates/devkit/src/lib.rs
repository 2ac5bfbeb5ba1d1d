//! Demo identity provider and demo relying party.
//!
//! Both are real OpenID Connect parties speaking HTTP, so `hub-demo` ([`demo`]) lets a newcomer walk a
//! whole journey in a browser and the integration tests exercise the hub exactly as an
//! independent IdP and service would, with no mocks in between.
//!
//! - [`idp::DemoIdp`]: an OpenID Provider with fixed [`test_people`] and a login page that can
//!   simulate the unhappy paths (cancel, refusal, outage, a level below the one requested).
//! - [`rp::DemoRp`]: a government-service-like client of the hub built on the `openidconnect`
//!   crate, showing the match outcome and the verified claims it received.

pub mod corpus;
pub mod demo;
mod forms;
pub mod idp;
mod pages;
pub mod rp;

/// A fictional person the demo IdP can log in as.
///
/// The data is fixed because the demo department records and the integration tests are
/// written against these exact people (match, no match, ambiguous, previous address,
/// no address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestPerson {
    /// The IdP's own subject identifier (never shown to the RP by the hub).
    pub subject: String,
    /// First given name.
    pub given_name: String,
    /// Further given names, in order.
    pub middle_names: Vec<String>,
    /// Current family name.
    pub family_name: String,
    /// Earlier family names, most recent first.
    pub previous_family_names: Vec<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub birthdate: Option<String>,
    /// Gender as the IdP verified it, if at all.
    pub gender: Option<String>,
    /// Current postal address, if the person has one the IdP verified.
    pub address: Option<PostalAddress>,
    /// Earlier addresses, most recent first.
    pub previous_addresses: Vec<PostalAddress>,
}

impl TestPerson {
    /// Given names and family name, for pages.
    pub fn full_name(&self) -> String {
        let mut parts: Vec<&str> = vec![self.given_name.as_str()];
        parts.extend(self.middle_names.iter().map(String::as_str));
        parts.push(self.family_name.as_str());
        parts.join(" ")
    }
}

/// A postal address in the shape the matching dataset uses (lines + postcode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostalAddress {
    /// Street lines then town, without the postcode.
    pub lines: Vec<String>,
    /// Postcode as written (UK format for the demo people).
    pub postcode: String,
}

fn address(lines: &[&str], postcode: &str) -> PostalAddress {
    PostalAddress {
        lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        postcode: postcode.to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
fn person(
    subject: &str,
    given_name: &str,
    family_name: &str,
    birthdate: &str,
    gender: Option<&str>,
    address: Option<PostalAddress>,
    previous_addresses: Vec<PostalAddress>,
) -> TestPerson {
    TestPerson {
        subject: subject.to_owned(),
        given_name: given_name.to_owned(),
        middle_names: Vec::new(),
        family_name: family_name.to_owned(),
        previous_family_names: Vec::new(),
        birthdate: Some(birthdate.to_owned()),
        gender: gender.map(str::to_owned),
        address,
        previous_addresses,
    }
}

/// The fixed demo people, in the order the login page lists them.
///
/// 1. `alice`: Alice Smith, matches demo department record 123.
/// 2. `bob`: Robert Brown, no department record (no match / account creation).
/// 3. `chris`: Chris Taylor, two department records share his name, date of birth and
///    postcode (ambiguous, resolved by cycle 3).
/// 4. `dana`: Dana Evans, the department only knows her previous address.
/// 5. `erik`: Erik Larsen, no address at all (cross-border identity): name and date of
///    birth alone do not match, his NINO at cycle 3 does.
pub fn test_people() -> Vec<TestPerson> {
    vec![
        person(
            "alice",
            "Alice",
            "Smith",
            "1980-04-10",
            Some("female"),
            Some(address(&["12 High Street", "Leeds"], "LS1 4AB")),
            Vec::new(),
        ),
        person(
            "bob",
            "Robert",
            "Brown",
            "1975-01-31",
            Some("male"),
            Some(address(&["3 Mill Lane", "York"], "YO1 7HH")),
            Vec::new(),
        ),
        person(
            "chris",
            "Chris",
            "Taylor",
            "1990-06-15",
            None,
            Some(address(&["7 Park Road", "Bristol"], "BS1 5AA")),
            Vec::new(),
        ),
        person(
            "dana",
            "Dana",
            "Evans",
            "1985-11-02",
            None,
            Some(address(&["9 New Street", "Cardiff"], "CF10 1AA")),
            vec![address(&["4 Old Road", "Swansea"], "SA1 1AA")],
        ),
        person(
            "erik",
            "Erik",
            "Larsen",
            "1970-03-03",
            None,
            None,
            Vec::new(),
        ),
    ]
}
