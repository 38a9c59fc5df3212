-- One row per order, amounts still in the order's own currency (int_order_facts converts them).
-- Every order comes from one purchase event (purchase_event_id) of the same user and session.

with source_orders as (

    select * from {{ source('raw', 'raw_orders') }}

),

cleaned as (

    select
        cast(order_id as {{ dbt.type_bigint() }}) as order_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(session_id as {{ dbt.type_bigint() }}) as session_id,
        cast(event_id as {{ dbt.type_bigint() }}) as purchase_event_id,
        {{ to_utc_timestamp('ordered_at') }} as ordered_at,
        lower(trim(status)) as status,
        {{ to_utc_timestamp('status_updated_at') }} as status_updated_at,
        cast(amount as numeric(12, 2)) as amount,
        cast(discount as numeric(12, 2)) as discount_amount,
        upper(trim(currency)) as currency,
        cast(quantity as integer) as quantity,
        nullif(trim(product_category), '') as product_category,
        lower(trim(payment_method)) as payment_method

    from source_orders

)

select * from cleaned
