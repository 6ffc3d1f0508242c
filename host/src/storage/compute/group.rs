use crate::model::Dimensions;

/// The group a series falls in: its value for each `group_by` key, `None`
/// when it lacks the key.
pub fn group_of(dimensions: &Dimensions, group_by: &[String]) -> Vec<Option<String>> {
    group_by
        .iter()
        .map(|k| dimensions.get(k).map(str::to_owned))
        .collect()
}

/// The dimensions a grouped series is reported with: the group-by keys the
/// group has a value for.
pub fn group_dimensions(group_by: &[String], group: &[Option<String>]) -> Dimensions {
    group_by
        .iter()
        .zip(group)
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect()
}
