//! Where a territorial problem is: a point (WGS 84 degrees) inside the area the municipality
//! serves reports for, by default Chile's bounding box (continental Chile, Easter Island and
//! the Juan Fernández islands).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A rectangle of latitudes and longitudes (degrees): `south <= lat <= north`,
/// `west <= long <= east`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoBounds {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

impl GeoBounds {
    /// Chile, from Cape Horn and the Diego Ramírez islands to Visviri, and from Easter Island
    /// to the Argentine border.
    pub const CHILE: GeoBounds = GeoBounds {
        south: -56.6,
        west: -109.5,
        north: -17.4,
        east: -66.3,
    };

    /// `south,west,north,east`, as the `VENTANILLA_GEO_BOUNDS` variable writes it.
    pub fn parse(s: &str) -> Option<Self> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>().ok())
            .collect::<Option<Vec<f64>>>()?;
        let [south, west, north, east] = v[..] else {
            return None;
        };
        let b = GeoBounds {
            south,
            west,
            north,
            east,
        };
        b.is_valid().then_some(b)
    }

    pub fn is_valid(&self) -> bool {
        let lat_ok = |x: f64| (-90.0..=90.0).contains(&x);
        let long_ok = |x: f64| (-180.0..=180.0).contains(&x);
        lat_ok(self.south)
            && lat_ok(self.north)
            && long_ok(self.west)
            && long_ok(self.east)
            && self.south < self.north
            && self.west < self.east
    }

    fn contains(&self, lat: f64, long: f64) -> bool {
        (self.south..=self.north).contains(&lat) && (self.west..=self.east).contains(&long)
    }
}

impl Default for GeoBounds {
    fn default() -> Self {
        Self::CHILE
    }
}

/// A point a case is about, validated: both coordinates, finite, inside the bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location {
    lat: f64,
    long: f64,
}

/// Why a location was refused: the field to fix and what to do, in Spanish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for LocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Location {
    /// Both coordinates or none: `Ok(None)` when neither was given.
    pub fn parse(
        lat: Option<f64>,
        long: Option<f64>,
        bounds: &GeoBounds,
    ) -> Result<Option<Self>, LocationError> {
        let err = |field, message: &str| LocationError {
            field,
            message: message.to_string(),
        };
        let (lat, long) = match (lat, long) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(err(
                    "long",
                    "Falta la longitud: indique la latitud y la longitud, o ninguna.",
                ))
            }
            (None, Some(_)) => {
                return Err(err(
                    "lat",
                    "Falta la latitud: indique la latitud y la longitud, o ninguna.",
                ))
            }
            (Some(a), Some(b)) => (a, b),
        };
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(err(
                "lat",
                "La latitud debe ser un número entre -90 y 90 (ejemplo: -36,6183).",
            ));
        }
        if !long.is_finite() || !(-180.0..=180.0).contains(&long) {
            return Err(err(
                "long",
                "La longitud debe ser un número entre -180 y 180 (ejemplo: -72,9556).",
            ));
        }
        if !bounds.contains(lat, long) {
            return Err(err(
                "lat",
                "El punto está fuera del territorio que atiende la municipalidad: revise la latitud y la longitud.",
            ));
        }
        Ok(Some(Self { lat, long }))
    }

    /// From text as forms and GeoReport send it (`-36.6183`; a decimal comma is accepted).
    pub fn parse_text(
        lat: Option<&str>,
        long: Option<&str>,
        bounds: &GeoBounds,
    ) -> Result<Option<Self>, LocationError> {
        let num = |s: Option<&str>| -> Option<f64> {
            let s = s.map(str::trim).filter(|s| !s.is_empty())?;
            // Unreadable text becomes NaN, which `parse` refuses naming the field.
            Some(s.replace(',', ".").parse::<f64>().unwrap_or(f64::NAN))
        };
        Self::parse(num(lat), num(long), bounds)
    }

    /// A point already stored (validated when it was filed).
    pub fn stored(lat: Option<f64>, long: Option<f64>) -> Option<Self> {
        match (lat, long) {
            (Some(lat), Some(long)) if lat.is_finite() && long.is_finite() => {
                Some(Self { lat, long })
            }
            _ => None,
        }
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn long(&self) -> f64 {
        self.long
    }

    /// The point on openstreetmap.org, with a marker, zoomed to the street.
    pub fn osm_url(&self) -> String {
        format!(
            "https://www.openstreetmap.org/?mlat={lat:.6}&mlon={long:.6}#map=18/{lat:.6}/{long:.6}",
            lat = self.lat,
            long = self.long
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: GeoBounds = GeoBounds::CHILE;

    #[test]
    fn a_point_in_tome_is_accepted_and_linked() {
        let l = Location::parse(Some(-36.6183), Some(-72.9556), &B)
            .expect("valid")
            .expect("some");
        assert_eq!(
            l.osm_url(),
            "https://www.openstreetmap.org/?mlat=-36.618300&mlon=-72.955600#map=18/-36.618300/-72.955600"
        );
        assert_eq!(Location::parse(None, None, &B), Ok(None));
        let t = Location::parse_text(Some(" -36,6183 "), Some("-72.9556"), &B)
            .expect("text")
            .expect("some");
        assert_eq!(t, l);
        assert_eq!(Location::parse_text(Some(""), Some(" "), &B), Ok(None));
    }

    #[test]
    fn bad_points_name_the_field() {
        let field = |lat, long| Location::parse(lat, long, &B).expect_err("refused").field;
        assert_eq!(field(Some(-36.6), None), "long");
        assert_eq!(field(None, Some(-72.9)), "lat");
        assert_eq!(field(Some(f64::NAN), Some(-72.9)), "lat");
        assert_eq!(field(Some(-36.6), Some(200.0)), "long");
        assert_eq!(field(Some(91.0), Some(-72.9)), "lat");
        // Madrid: a valid point, outside Chile.
        assert_eq!(field(Some(40.4), Some(-3.7)), "lat");
        let e = Location::parse_text(Some("abc"), Some("-72.9"), &B).expect_err("text");
        assert_eq!(e.field, "lat");
        assert!(e.message.contains("latitud"), "{e}");
        // Easter Island is Chile.
        assert!(Location::parse(Some(-27.12), Some(-109.35), &B).is_ok());
    }

    #[test]
    fn bounds_parse_from_the_variable() {
        let b = GeoBounds::parse("-37.0, -73.2, -36.4, -72.6").expect("bounds");
        assert_eq!(b.north, -36.4);
        assert!(Location::parse(Some(-33.45), Some(-70.66), &b).is_err());
        for bad in ["", "1,2,3", "-36,-72,-37,-73", "a,b,c,d", "-91,-73,-36,-72"] {
            assert!(GeoBounds::parse(bad).is_none(), "{bad}");
        }
    }
}
