//! Discovery documents: APIGroupList, APIGroup, APIResourceList and /version.
