{% set payment_methods = ['credit_card', 'coupon', 'bank_transfer', 'gift_card'] %}

with

orders as (

    select * from {{ ref('stg_orders') }}

),

order_items as (

    select * from {{ ref('stg_order_items') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

stores as (

    select * from {{ ref('stg_stores') }}

),

order_lines as (

    select
        order_items.order_id,

        count(*) as line_count,
        sum(order_items.quantity) as item_count,
        sum(order_items.quantity * products.unit_price - coalesce(order_items.discount, 0)) as items_total

    from order_items

    left join products
        on order_items.product_id = products.product_id

    group by order_items.order_id

),

order_payments as (

    select
        order_id,

        {% for payment_method in payment_methods -%}
        sum(case when payment_method = '{{ payment_method }}' then amount else 0 end) as {{ payment_method }}_amount,
        {% endfor -%}

        sum(amount) as total_amount

    from payments

    group by order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        stores.store_name,
        stores.city,
        orders.ordered_on,
        orders.order_month,
        orders.status,
        orders.is_returned,
        orders.order_total,
        orders.order_total * (1 + coalesce(stores.tax_rate, 0)) as order_total_with_tax,
        coalesce(order_lines.line_count, 0) as line_count,
        coalesce(order_lines.item_count, 0) as item_count,
        coalesce(order_lines.items_total, 0) as items_total,

        {% for payment_method in payment_methods -%}
        coalesce(order_payments.{{ payment_method }}_amount, 0) as {{ payment_method }}_amount,
        {% endfor -%}

        coalesce(order_payments.total_amount, 0) as amount_paid

    from orders

    left join order_lines
        on orders.order_id = order_lines.order_id

    left join order_payments
        on orders.order_id = order_payments.order_id

    left join stores
        on orders.store_id = stores.store_id

)

select * from final
