-- Browse pages are cached per inventory version (see src/api/page_cache.rs).
-- Every transaction that changes what can be browsed bumps the version in the
-- same transaction, so a page read after reading version v is never older
-- than v, on any replica.
create table inventory_version (
    only_row boolean primary key default true check (only_row),
    version  bigint not null
);
insert into inventory_version (version) values (0);
