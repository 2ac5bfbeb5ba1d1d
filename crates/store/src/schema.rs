//! Diesel schema for the tables created by `/migrations` (kept in step by hand).

diesel::table! {
    department_records (rp_id, record_id) {
        rp_id -> Text,
        record_id -> Text,
        date_of_birth -> Nullable<Text>,
        dataset -> Text,
    }
}

diesel::table! {
    record_links (rp_id, idp_id, idp_subject) {
        rp_id -> Text,
        idp_id -> Text,
        idp_subject -> Text,
        record_id -> Text,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(department_records, record_links);

// Diesel's own bookkeeping table (created by the migration harness): only the
// column [`crate::Database::schema_status`] reads.
diesel::table! {
    __diesel_schema_migrations (version) {
        version -> VarChar,
    }
}
