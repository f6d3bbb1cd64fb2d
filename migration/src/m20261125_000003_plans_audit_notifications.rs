//! Usage counters per organization and month, notification settings and their
//! outbox for webhooks, and the audit log.

use sea_orm_migration::prelude::*;

use crate::table_builders::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("usage_counters"))
                    .col(uuid("organization_id"))
                    .col(text("period"))
                    .col(
                        ColumnDef::new(name("executions"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp_null("quota_notified_at"))
                    .primary_key(
                        Index::create()
                            .col(name("organization_id"))
                            .col(name("period")),
                    )
                    .foreign_key(&mut cascade(
                        "usage_counters",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("notification_settings"))
                    .col(uuid("organization_id").primary_key())
                    .col(text("emails"))
                    .col(text_null("webhook_url"))
                    .col(boolean("on_failure", true))
                    .col(boolean("on_auto_disable", true))
                    .col(boolean("on_recovery", true))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut cascade(
                        "notification_settings",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("notification_events"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(uuid_null("job_id"))
                    .col(text("kind"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut cascade(
                        "notification_events",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "notification_events",
                &["organization_id", "job_id", "kind", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("webhook_outbox"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(text("url"))
                    .col(text("payload"))
                    .col(timestamp("created_at"))
                    .col(integer("attempts", 0))
                    .col(timestamp("next_attempt_at"))
                    .col(timestamp_null("sent_at"))
                    .col(text_null("last_error"))
                    .col(timestamp_null("locked_until"))
                    .foreign_key(&mut cascade(
                        "webhook_outbox",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("webhook_outbox", &["sent_at", "next_attempt_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("audit_events"))
                    .col(uuid_pk("id"))
                    .col(uuid_null("organization_id"))
                    .col(text("actor_type"))
                    .col(text_null("actor_id"))
                    .col(text("action"))
                    .col(text_null("target_type"))
                    .col(text_null("target_id"))
                    .col(text_null("ip"))
                    .col(text_null("user_agent"))
                    .col(text("metadata"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "audit_events",
                &["organization_id", "created_at", "id"],
            ))
            .await?;
        manager
            .create_index(index("audit_events", &["created_at", "id"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "audit_events",
            "webhook_outbox",
            "notification_events",
            "notification_settings",
            "usage_counters",
        ] {
            manager
                .drop_table(Table::drop().table(name(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
