//! Label ↔ group-resource mapping of a rule: overrides, `resources.template` and guessing.

use regex::Regex;

use super::{ResourceMapping, ResourceTemplate};
use crate::promql::template::{Context, Template, Value};
use crate::resources::{GroupResource, ResourceInfo, ResourceTable};

/// Placeholders rendered into a template to find where `.Group` / `.Resource` go.
const GROUP_MARK: &str = "\u{0}G\u{0}";
const RESOURCE_MARK: &str = "\u{0}R\u{0}";

/// Compiles `resources.template` both ways; the error is the message for the config problem.
pub(crate) fn compile_template(source: &str) -> Result<ResourceTemplate, String> {
    let template = Template::parse(source).map_err(|e| format!("invalid template: {e}"))?;
    let rendered = template
        .render(&context(GROUP_MARK, RESOURCE_MARK))
        .map_err(|e| format!("invalid template: {e}"))?;
    if !rendered.contains(RESOURCE_MARK) {
        return Err("must include at least `<<.Resource>>`".into());
    }
    let pattern = regex::escape(&rendered)
        .replace(GROUP_MARK, "(?P<group>.+?)")
        .replace(RESOURCE_MARK, "(?P<resource>.+?)");
    let regex = Regex::new(&format!("^{pattern}$")).map_err(|e| {
        format!(
            "template does not make a valid label regex: {}",
            regex_message(&e)
        )
    })?;
    Ok(ResourceTemplate { template, regex })
}

fn context(group: &str, resource: &str) -> Context {
    let mut ctx = Context::new();
    ctx.insert("Group", Value::Str(group.to_owned()));
    ctx.insert("Resource", Value::Str(resource.to_owned()));
    ctx
}

/// The last line of a `regex` error without its `error: ` prefix.
pub(crate) fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// A [`ResourceInfo`] for a resource the table does not know (standalone mode, CRDs).
pub(crate) fn guess(group: &str, resource: &str) -> ResourceInfo {
    let resource = resource.to_ascii_lowercase();
    let plural = if resource.ends_with('s') {
        resource.clone()
    } else {
        format!("{resource}s")
    };
    let singular = resource.strip_suffix('s').unwrap_or(&resource).to_owned();
    let mut chars = singular.chars();
    let kind = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    ResourceInfo {
        group_resource: GroupResource::new(group, &plural),
        singular,
        version: "v1".into(),
        kind,
        namespaced: true,
    }
}

pub(crate) fn resource_for_label(
    mapping: &ResourceMapping,
    label: &str,
    table: &ResourceTable,
) -> Option<ResourceInfo> {
    if let Some((_, info)) = mapping.overrides.iter().find(|(l, _)| l == label) {
        return Some(info.clone());
    }
    let caps = mapping.template.as_ref()?.regex.captures(label)?;
    let resource = caps.name("resource")?.as_str();
    let info = match caps.name("group") {
        // The label form of a group has `.`/`-` replaced by `_`: try the text as is, then dotted.
        Some(group) => table
            .lookup_group(group.as_str(), resource)
            .or_else(|| table.lookup_group(&group.as_str().replace('_', "."), resource)),
        None => table.lookup(resource),
    };
    info.cloned()
}

pub(crate) fn label_for_resource(
    mapping: &ResourceMapping,
    resource: &ResourceInfo,
) -> Option<String> {
    if let Some((label, _)) = mapping
        .overrides
        .iter()
        .find(|(_, info)| info.group_resource == resource.group_resource)
    {
        return Some(label.clone());
    }
    let group = resource.group_resource.group.replace(['.', '-'], "_");
    mapping
        .template
        .as_ref()?
        .template
        .render(&context(&group, &resource.singular))
        .ok()
}
