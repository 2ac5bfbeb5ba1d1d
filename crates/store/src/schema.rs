//! Diesel schema for the tables created by `/migrations` (kept in step by hand).

diesel::table! {
    department_records (rp_id, record_id) {
        rp_id -> Text,
        record_id -> Text,
        dataset -> Text,
        /// 1 once the record's blocking keys are stored, 0 while the backfill
        /// still has to derive them (rows imported before the keys table).
        keyed -> Integer,
    }
}

diesel::table! {
    department_record_keys (rp_id, blocking_key, record_id) {
        rp_id -> Text,
        blocking_key -> Text,
        record_id -> Text,
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

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        time -> Text,
        max_time -> Text,
        journey_id -> Nullable<Text>,
        event_type -> Text,
        rp_id -> Nullable<Text>,
        idp_id -> Nullable<Text>,
        outcome -> Nullable<Text>,
        body -> Text,
        leaf_hash -> Text,
        pruned -> Integer,
    }
}

diesel::table! {
    audit_nodes (level, idx) {
        level -> Integer,
        idx -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_checkpoints (tree_size) {
        tree_size -> BigInt,
        root_hash -> Text,
        time -> Text,
        signature -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        size -> BigInt,
        max_time -> Nullable<Text>,
        max_lag_ms -> BigInt,
        pruned_below -> BigInt,
        seal -> Nullable<Text>,
    }
}

diesel::table! {
    registry_entries (kind, id) {
        kind -> Text,
        id -> Text,
        document -> Text,
        status -> Text,
        source -> Text,
        revision -> BigInt,
        updated_at -> Text,
        updated_by -> Text,
    }
}

diesel::table! {
    registry_revision (id) {
        id -> Integer,
        revision -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    department_records,
    department_record_keys,
    record_links,
    audit_events,
    audit_nodes,
    audit_checkpoints,
    audit_head,
    registry_entries,
    registry_revision,
);

// Diesel's own bookkeeping table (created by the migration harness): only the
// column [`crate::Database::schema_status`] reads.
diesel::table! {
    __diesel_schema_migrations (version) {
        version -> VarChar,
    }
}
