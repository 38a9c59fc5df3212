-- One row per user. Emails are lower-cased and trimmed so that they compare as people expect;
-- blank strings become null so that not_null tests see them.

with source_users as (

    select * from {{ source('raw', 'raw_users') }}

),

cleaned as (

    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        lower(trim(email)) as email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(username), '') as username,
        upper(trim(country)) as country_code,
        nullif(trim(city), '') as city,
        lower(trim(plan)) as plan,
        lower(trim(referrer)) as acquisition_channel,
        cast(is_active as {{ dbt.type_boolean() }}) as is_active,
        cast(date_of_birth as date) as date_of_birth,
        {{ to_utc_timestamp('signup_at') }} as signed_up_at

    from source_users

)

select * from cleaned
