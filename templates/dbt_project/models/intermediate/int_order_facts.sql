-- One row per order with the business rules applied: whether it counts as revenue, its amounts in
-- USD, and where it falls in the customer's order history.

with orders as (

    select * from {{ ref('stg_orders') }}

),

order_facts as (

    select
        order_id,
        user_id,
        session_id,
        purchase_event_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        row_number() over (
            partition by user_id
            -- order_id breaks ties so that the numbering is the same on every run
            order by ordered_at, order_id
        ) as user_order_number,
        status,
        status_updated_at,
        {{ is_revenue_order('status') }} as is_revenue,
        currency,
        amount,
        discount_amount,
        {{ to_usd('amount', 'currency') }} as amount_usd,
        {{ to_usd('discount_amount', 'currency') }} as discount_usd,
        quantity,
        product_category,
        payment_method

    from orders

)

select * from order_facts
