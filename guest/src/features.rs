//! How a product's features are fetched (whole product or per section) and how the
//! per-section lists merge into one set of features, each remembering its sections.

use crate::bindings::customer_api::{FeaturesRequest, ProductSummary};
use crate::bindings::store::FeaturePlacement;

/// The sections to fetch features from; empty when the product has no sections.
/// A product has sections when `sections` is non-empty or `sections_with_default` has
/// more than the default one; the ids come from `sections`, else from `sections_with_default`.
pub fn section_ids(product: &ProductSummary) -> &[u64] {
    if !product.section_ids.is_empty() {
        &product.section_ids
    } else if product.sections_with_default_ids.len() > 1 {
        &product.sections_with_default_ids
    } else {
        &[]
    }
}

/// One request per section, or one for the whole product.
pub fn requests_for(product: &ProductSummary) -> Vec<FeaturesRequest> {
    let sections = section_ids(product);
    if sections.is_empty() {
        return vec![FeaturesRequest { product_id: product.id, section_id: None }];
    }
    sections.iter().map(|&s| FeaturesRequest { product_id: product.id, section_id: Some(s) }).collect()
}

/// Merges feature lists (each paired with the section it came from, if any) into one
/// placement per feature id, in first-seen order.
pub fn merge<'a>(lists: impl IntoIterator<Item = (Option<u64>, &'a [u64])>) -> Vec<FeaturePlacement> {
    let mut merged: Vec<FeaturePlacement> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (section, ids) in lists {
        for &id in ids {
            let slot = *index.entry(id).or_insert_with(|| {
                merged.push(FeaturePlacement { id, section_ids: Vec::new() });
                merged.len() - 1
            });
            let sections = &mut merged[slot].section_ids;
            if let Some(s) = section.filter(|s| !sections.contains(s)) {
                sections.push(s);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sections: &[u64], with_default: &[u64]) -> ProductSummary {
        ProductSummary {
            id: 7,
            name: "p".into(),
            section_ids: sections.to_vec(),
            sections_with_default_ids: with_default.to_vec(),
        }
    }

    #[test]
    fn a_product_with_only_its_default_section_is_fetched_whole() {
        let reqs = requests_for(&product(&[], &[70]));
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].section_id, None);
    }

    #[test]
    fn sections_come_from_sections_first_then_sections_with_default() {
        assert_eq!(section_ids(&product(&[1, 2], &[70, 1, 2])), &[1, 2]);
        assert_eq!(section_ids(&product(&[], &[70, 3])), &[70, 3]);
        let reqs = requests_for(&product(&[1, 2], &[]));
        assert_eq!(reqs.iter().map(|r| r.section_id).collect::<Vec<_>>(), vec![Some(1), Some(2)]);
    }

    #[test]
    fn features_listed_by_two_sections_are_written_once_with_both_sections() {
        let merged = merge([(Some(1), &[10, 11][..]), (Some(2), &[11, 12][..])]);
        let got: Vec<(u64, Vec<u64>)> = merged.into_iter().map(|f| (f.id, f.section_ids)).collect();
        assert_eq!(got, vec![(10, vec![1]), (11, vec![1, 2]), (12, vec![2])]);
    }

    #[test]
    fn features_of_a_product_without_sections_have_no_sections() {
        let merged = merge([(None, &[5, 6][..])]);
        assert!(merged.iter().all(|f| f.section_ids.is_empty()));
        assert_eq!(merged.len(), 2);
    }
}
