//! Users, sessions, organizations, memberships, invitations, API keys and the
//! email outbox.

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
                    .table(name("users"))
                    .col(uuid_pk("id"))
                    .col(text("email"))
                    .col(text_null("name"))
                    .col(text_null("password_hash"))
                    .col(boolean("is_platform_admin", false))
                    .col(timestamp_null("disabled_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(unique("users", &["email"])).await?;

        manager
            .create_table(
                Table::create()
                    .table(name("auth_sessions"))
                    .col(uuid_pk("id"))
                    .col(uuid("user_id"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("revoked_at"))
                    .col(text_null("user_agent"))
                    .col(text_null("ip"))
                    .foreign_key(&mut cascade("auth_sessions", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("auth_sessions", &["user_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("refresh_tokens"))
                    .col(uuid_pk("id"))
                    .col(uuid("session_id"))
                    .col(text("token_hash"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("used_at"))
                    .foreign_key(&mut cascade(
                        "refresh_tokens",
                        "session_id",
                        "auth_sessions",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("refresh_tokens", &["token_hash"]))
            .await?;
        manager
            .create_index(index("refresh_tokens", &["session_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("email_tokens"))
                    .col(uuid_pk("id"))
                    .col(uuid("user_id"))
                    .col(text("purpose"))
                    .col(text("token_hash"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("used_at"))
                    .foreign_key(&mut cascade("email_tokens", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("email_tokens", &["token_hash"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("auth_failures"))
                    .col(uuid_pk("id"))
                    .col(text("scope"))
                    .col(text("subject"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("auth_failures", &["scope", "subject", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("organizations"))
                    .col(uuid_pk("id"))
                    .col(text("slug"))
                    .col(text("name"))
                    .col(
                        ColumnDef::new(name("plan"))
                            .text()
                            .not_null()
                            .default("free"),
                    )
                    .col(timestamp_null("suspended_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("organizations", &["slug"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("signing_secrets"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(text("secret"))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("expires_at"))
                    .foreign_key(&mut cascade(
                        "signing_secrets",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("signing_secrets", &["organization_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("memberships"))
                    .col(uuid("organization_id"))
                    .col(uuid("user_id"))
                    .col(text("role"))
                    .col(timestamp("created_at"))
                    .primary_key(
                        Index::create()
                            .col(name("organization_id"))
                            .col(name("user_id")),
                    )
                    .foreign_key(&mut cascade(
                        "memberships",
                        "organization_id",
                        "organizations",
                    ))
                    .foreign_key(&mut cascade("memberships", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("memberships", &["user_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("invitations"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(text("email"))
                    .col(text("role"))
                    .col(text("token_hash"))
                    .col(uuid_null("invited_by"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("accepted_at"))
                    .col(timestamp_null("revoked_at"))
                    .foreign_key(&mut cascade(
                        "invitations",
                        "organization_id",
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("invitations", &["token_hash"]))
            .await?;
        manager
            .create_index(index("invitations", &["organization_id", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("api_keys"))
                    .col(uuid_pk("id"))
                    .col(uuid("organization_id"))
                    .col(text("public_id"))
                    .col(text("secret_hash"))
                    .col(text("name"))
                    .col(text("role"))
                    .col(uuid_null("created_by"))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("last_used_at"))
                    .col(timestamp_null("revoked_at"))
                    .foreign_key(&mut cascade("api_keys", "organization_id", "organizations"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("api_keys", &["public_id"]))
            .await?;
        manager
            .create_index(index("api_keys", &["organization_id", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(name("email_outbox"))
                    .col(uuid_pk("id"))
                    .col(text("recipient"))
                    .col(text("subject"))
                    .col(text("body"))
                    .col(timestamp("created_at"))
                    .col(integer("attempts", 0))
                    .col(timestamp("next_attempt_at"))
                    .col(timestamp_null("sent_at"))
                    .col(text_null("last_error"))
                    .col(timestamp_null("locked_until"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("email_outbox", &["sent_at", "next_attempt_at"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "email_outbox",
            "api_keys",
            "invitations",
            "memberships",
            "signing_secrets",
            "organizations",
            "auth_failures",
            "email_tokens",
            "refresh_tokens",
            "auth_sessions",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(name(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
