-- One row per tracked event.

with source_events as (

    select * from {{ source('raw', 'raw_events') }}

),

cleaned as (

    select
        cast(event_id as {{ dbt.type_bigint() }}) as event_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(session_id as {{ dbt.type_bigint() }}) as session_id,
        lower(trim(event_type)) as event_type,
        {{ to_utc_timestamp('occurred_at') }} as occurred_at,
        nullif(trim(page_url), '') as page_url,
        lower(trim(device)) as device

    from source_events

)

select * from cleaned
